//! Encode jobs: which media of each rendered channel need an item (`scan`), the order
//! they are built in (`queue`), how jobs ended (`record`), one build (`build`: measure
//! the audio, render the page, encode) and the pool that runs them (`pool`).

pub mod build;
pub mod pool;
pub mod queue;
pub mod record;
pub mod scan;
pub mod status;
