//! Content digests as typed values: an image's ID (the digest of its config), a layer's diff ID
//! (the digest of its uncompressed tar) and a chain ID (the name containerd gives the snapshot
//! that holds a layer unpacked on top of the layers below it), so that one is never passed where
//! another is meant. Only `sha256` exists in practice; anything else does not parse.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 hex digits>` digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest of what `hasher` was given.
    pub fn finish(hasher: Sha256) -> Digest {
        Digest(hasher.finalize().into())
    }

    /// `sha256:` and 64 lowercase hex digits, as Docker and containerd write them.
    pub fn parse(text: &str) -> Option<Digest> {
        Digest::from_hex(text.strip_prefix("sha256:")?)
    }

    /// 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest(digest))
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! typed_digest {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Digest);

        impl $name {
            pub fn parse(text: &str) -> Option<$name> {
                Digest::parse(text).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

typed_digest!(
    /// An image ID: the digest of the image's config, the same in Docker and containerd.
    ImageId
);
typed_digest!(
    /// A layer's diff ID: the digest of its uncompressed tar (the config's `rootfs.diff_ids`).
    DiffId
);
typed_digest!(
    /// A chain ID: the diff ID of the first layer, then `sha256(parent chain ID + " " + diff
    /// ID)` for each layer above; containerd keys unpacked snapshots by it.
    ChainId
);

/// The chain IDs of an image's layers, bottom first: one per diff ID.
pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
    let mut chain: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match chain.last() {
            None => ChainId(diff.0),
            Some(parent) => ChainId(Digest::of(format!("{parent} {diff}").as_bytes())),
        };
        chain.push(next);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(text: &str) -> DiffId {
        DiffId::parse(text).unwrap()
    }

    #[test]
    fn digests_parse_only_sha256_with_64_lowercase_hex_digits() {
        let text = "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83";
        let digest = Digest::parse(text).unwrap();
        assert_eq!(digest.to_string(), text);
        assert_eq!(Digest::from_hex(&digest.hex()), Some(digest));
        for bad in [
            "",
            "sha256:",
            "sha512:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
            "f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
            "sha256:F2B80CF2339A0D70A306C52884D23585ABFE7639E0C1EE7B8FF61BC00D1EFA83",
            "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa8",
            "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa8g",
            "sha256:é2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa8",
        ] {
            assert_eq!(Digest::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_digest_of_nothing_is_sha256s() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Checked against `ctr snapshots ls` after importing a three-layer image into containerd
    /// 1.6: the keys are these chain IDs.
    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let diffs = [
            diff("sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83"),
            diff("sha256:aebb974d77aa5dad3e976c036a22d80140bec90f522bfdcaee75f83935a2942f"),
            diff("sha256:4b0ff2601da08b2e4776f9663d73741cd036642372d4455f6fb28857f506dc55"),
        ];
        let chain: Vec<String> = chain_ids(&diffs).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            chain,
            [
                "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
                "sha256:e9a37085294dbbd981be9936901be3aebc26c2ca47b353d4697c0cfa0770d083",
                "sha256:42cc2ddd5bdcd424a3deb171f0d08d0067e9a5367df86e5e5bc2204734a31010",
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }
}
