//! Object keys from a remote store become paths inside the local cache, or are refused.
//! A hostile key (`..`, absolute, backslashes, NUL, control characters, over-long
//! names) never produces a path outside the cache: it is rejected with the reason.

use std::path::{Component, Path, PathBuf};

/// Longest key accepted (bytes).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest path component accepted (bytes; the usual file-system limit).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Prefix of headend's own temporary files in the cache; keys may not use it.
pub const TEMP_PREFIX: &str = ".headend-partial-";

/// Why a key cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("object key is empty")]
    Empty,
    #[error("object key {key:?} is {len} bytes, over the {MAX_KEY_BYTES}-byte limit; shorten it")]
    TooLong { key: String, len: usize },
    #[error("object key {key:?} has a {what}; rename the object without it")]
    BadCharacter { key: String, what: &'static str },
    #[error("object key {key:?} is absolute (starts with '/'); store it without the leading slash")]
    Absolute { key: String },
    #[error("object key {key:?} has a {component:?} component, which could leave the cache; rename the object")]
    Traversal { key: String, component: String },
    #[error("object key {key:?} has an empty component ('//' or a trailing '/'); rename the object")]
    EmptyComponent { key: String },
    #[error("object key {key:?} has a component over {MAX_COMPONENT_BYTES} bytes; shorten it")]
    ComponentTooLong { key: String },
    #[error("object key {key:?} uses headend's reserved prefix {TEMP_PREFIX:?}; rename the object")]
    Reserved { key: String },
}

/// A relative path inside the cache, made only from a checked key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CachePath(PathBuf);

impl CachePath {
    /// Checks `key` and maps it to a relative path (one component per `/`-separated
    /// part of the key).
    pub fn from_key(key: &str) -> Result<Self, KeyError> {
        let err_key = || key.chars().take(200).collect::<String>();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong { key: err_key(), len: key.len() });
        }
        if key.contains('\0') {
            return Err(KeyError::BadCharacter { key: err_key(), what: "NUL byte" });
        }
        if key.contains('\\') {
            return Err(KeyError::BadCharacter { key: err_key(), what: "backslash" });
        }
        if key.chars().any(char::is_control) {
            return Err(KeyError::BadCharacter { key: err_key(), what: "control character" });
        }
        if key.starts_with('/') {
            return Err(KeyError::Absolute { key: err_key() });
        }
        let mut path = PathBuf::new();
        for part in key.split('/') {
            match part {
                "" => return Err(KeyError::EmptyComponent { key: err_key() }),
                "." | ".." => return Err(KeyError::Traversal { key: err_key(), component: part.into() }),
                p if p.len() > MAX_COMPONENT_BYTES => return Err(KeyError::ComponentTooLong { key: err_key() }),
                p if p.starts_with(TEMP_PREFIX) => return Err(KeyError::Reserved { key: err_key() }),
                p => path.push(p),
            }
        }
        // Defence in depth: whatever the rules above missed, only normal components.
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(KeyError::Traversal { key: err_key(), component: path.display().to_string() });
        }
        Ok(CachePath(path))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// The absolute path under `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_map_one_component_per_part() {
        let p = CachePath::from_key("rock/AC-DC/Highway to Hell (live).mp3").unwrap();
        assert_eq!(p.as_path(), Path::new("rock/AC-DC/Highway to Hell (live).mp3"));
        assert_eq!(p.under(Path::new("/cache")), Path::new("/cache/rock/AC-DC/Highway to Hell (live).mp3"));
        assert!(CachePath::from_key("jazz/Motörhead ♠.flac").is_ok(), "non-ASCII is fine");
        assert!(CachePath::from_key("a/..b/c..").is_ok(), "dots inside names are fine");
    }

    #[test]
    fn hostile_keys_are_refused_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("../etc/passwd", "\"..\" component"),
            ("rock/../../etc/passwd", "\"..\" component"),
            ("rock/./x.mp3", "\".\" component"),
            ("/etc/passwd", "absolute"),
            ("rock\\..\\..\\win.ini", "backslash"),
            ("rock/a\0b.mp3", "NUL"),
            ("rock/a\nb.mp3", "control character"),
            ("rock//x.mp3", "empty component"),
            ("rock/", "empty component"),
            ("rock/.headend-partial-x", "reserved prefix"),
        ];
        for (key, says) in cases {
            let e = CachePath::from_key(key).expect_err(key);
            assert!(e.to_string().contains(says), "{key:?}: {e}");
        }
        let long_component = format!("rock/{}", "x".repeat(256));
        assert!(matches!(CachePath::from_key(&long_component), Err(KeyError::ComponentTooLong { .. })));
        let long_key = "a/".repeat(600);
        assert!(matches!(CachePath::from_key(&long_key), Err(KeyError::TooLong { .. })));
    }

    #[test]
    fn no_accepted_key_leaves_the_root() {
        // Random keys over a hostile alphabet: whatever is accepted stays inside.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alphabet = ['a', '.', '/', '\\', '\0', '~', ' ', ':', 'é'];
        let root = Path::new("/srv/cache");
        for _ in 0..20_000 {
            let len = rng.random_range(1..12);
            let key: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            if let Ok(p) = CachePath::from_key(&key) {
                let full = p.under(root);
                assert!(full.starts_with(root), "{key:?} -> {}", full.display());
                assert!(full.components().all(|c| !matches!(c, Component::ParentDir | Component::CurDir)), "{key:?}");
            }
        }
    }
}
