//! The address a publish names is gone from the host: a LAN interface whose address changed (a new
//! DHCP lease, a moved VM) while a script or compose file still names the old one.
//!
//! The environment gets an interface `iface` with `addr` (a bridge with no ports: this kernel may
//! have no dummy device, and a bridge carries local addresses the same way); `gone` is on its subnet
//! but on no interface. `undo` deletes the interface, and with it any address added since.

use serde::{Deserialize, Serialize};

use super::{sh_quote, Injected};
use crate::env::Environment;
use crate::error::HarnessError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressGone {
    /// Interface name (at most 15 bytes).
    pub iface: String,
    /// The address the interface has now, with its prefix (`10.77.0.1/24`).
    pub addr: String,
    /// The address the publish names, which no interface has.
    pub gone: String,
}

impl AddressGone {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let (i, a) = (sh_quote(&self.iface), sh_quote(&self.addr));
        let script = format!("ip link add {i} type bridge && ip addr add {a} dev {i} && ip link set {i} up");
        let out = env.sh(&script).await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "address-gone",
                format!("`{script}` exited {}: {}", out.exit_code, out.stderr.trim()),
            ));
        }
        Ok(Injected {
            summary: format!("{} has {}; {} is on no interface", self.iface, self.addr, self.gone),
            ..Default::default()
        })
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let out = env.exec(&["ip", "-o", "addr", "show"]).await?;
        let has = |ip: &str| {
            out.stdout.lines().any(|l| l.split_whitespace().any(|w| w.split('/').next() == Some(ip)))
        };
        let now = self.addr.split('/').next().unwrap_or(&self.addr);
        if !has(now) {
            return Err(HarnessError::fault("address-gone", format!("no interface has {now}")));
        }
        if has(&self.gone) {
            return Err(HarnessError::fault("address-gone", format!("{} is on an interface", self.gone)));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        env.sh(&format!("ip link del {} 2>/dev/null; true", sh_quote(&self.iface))).await.map(|_| ())
    }
}
