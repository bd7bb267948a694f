//! Encode jobs: the queue and pool that turn synced media into TS items (in progress).
