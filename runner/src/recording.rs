//! A cell's recording replayed through today's rules: the bundle `portwhy collect` took in the
//! environment, with the same daemon text and subject, diagnosed again without Docker.

use portwhy::diagnosis::Diagnosis;
use portwhy::evidence::Evidence;

use crate::outcome::CellResult;

/// Today's verdict for the cell's recorded evidence.
pub fn rediagnose(c: &CellResult) -> Result<Diagnosis, String> {
    let bundle = c.bundle.as_ref().ok_or_else(|| {
        format!(
            "{}: the recording has no evidence bundle (recorded before bundles were kept): re-record it",
            c.id()
        )
    })?;
    let evidence: Evidence = serde_json::from_value(bundle.clone()).map_err(|e| {
        format!("{}: the recorded bundle does not parse with today's evidence model: {e}", c.id())
    })?;
    let error = match &c.diagnose_input.error {
        Some(text) => Some(
            portwhy::parse::error::classify(text)
                .map_err(|e| format!("{}: the recorded daemon text does not classify: {e}", c.id()))?,
        ),
        None => None,
    };
    Ok(portwhy::rules::diagnose_for(&evidence, error.as_ref(), c.diagnose_input.container.as_deref()))
}
