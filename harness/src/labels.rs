//! Label keys put on everything the harness creates; `gc::sweep` and `image::list_images` find
//! what a run or a recipe left by them.

/// The run that created a container, volume or network (`gc::sweep` removes by it).
pub const LABEL_RUN: &str = "io.portwhy.run";
/// The scenario an environment serves.
pub const LABEL_SCENARIO: &str = "io.portwhy.scenario";
/// The environment's own name.
pub const LABEL_ENV: &str = "io.portwhy.env";
/// An engine image's recipe hash: the cache key of `image::ensure_image`.
pub const LABEL_RECIPE: &str = "io.portwhy.recipe";
