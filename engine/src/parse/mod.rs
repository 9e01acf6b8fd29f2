//! Pure parsers: daemon error text, iptables-save, nft JSON, /proc and docker-proxy command lines.

pub mod error;
pub mod iptables;
pub mod nft;
pub mod procnet;
pub mod proxy;
