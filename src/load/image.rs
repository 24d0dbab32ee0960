//! An image as the load stage sees it: its ID, its layers' diff IDs and chain IDs, its platform
//! and size, read once from the engine (`docker image inspect`). Every decision about a node
//! (has it, can it be tagged, which layers does it lack) compares these with what the node holds.

use std::path::PathBuf;

use bollard::Docker;
use bollard::models::ImageInspect;

use crate::build::BuiltImage;

use super::digest::{ChainId, DiffId, ImageId, chain_ids};
use super::error::LoadError;

/// One image, ready to be compared with what nodes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The reference, as deployed (`todo-backend:v1`).
    pub reference: String,
    pub id: ImageId,
    /// Bottom first.
    pub diff_ids: Vec<DiffId>,
    /// One per diff ID, bottom first.
    pub chain: Vec<ChainId>,
    pub platform: Platform,
    /// The engine's size of the image: about what a whole archive of it holds.
    pub size: u64,
    /// Where the engine keeps the top layer's files, when its storage driver is `overlay2`
    /// (`storage` reads layers from there).
    pub upper: Option<PathBuf>,
}

/// What an image runs on, as its config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Image {
    /// From what the engine says of `reference`.
    pub fn from_inspect(reference: &str, inspected: &ImageInspect) -> Result<Image, String> {
        let id_text = inspected.id.as_deref().unwrap_or_default();
        let id = ImageId::parse(id_text).ok_or_else(|| format!("its ID `{id_text}`"))?;
        let layers = inspected
            .root_fs
            .as_ref()
            .and_then(|root| root.layers.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let diff_ids = layers
            .iter()
            .map(|layer| DiffId::parse(layer).ok_or_else(|| format!("its layer `{layer}`")))
            .collect::<Result<Vec<_>, _>>()?;
        let platform = Platform {
            os: inspected.os.clone().unwrap_or_else(|| "linux".to_owned()),
            architecture: inspected.architecture.clone().unwrap_or_default(),
            variant: inspected.variant.clone().filter(|v| !v.is_empty()),
        };
        Ok(Image {
            reference: reference.to_owned(),
            id,
            chain: chain_ids(&diff_ids),
            diff_ids,
            platform,
            size: inspected.size.map_or(0, |size| size.max(0) as u64),
            upper: inspected
                .graph_driver
                .as_ref()
                .filter(|driver| driver.name == "overlay2")
                .and_then(|driver| driver.data.get("UpperDir"))
                .map(PathBuf::from),
        })
    }
}

#[cfg(test)]
impl Image {
    /// A linux/amd64 image of `diff_ids` (its chain computed), for tests.
    pub fn for_tests(reference: &str, id: ImageId, diff_ids: Vec<DiffId>) -> Image {
        Image {
            reference: reference.to_owned(),
            id,
            chain: chain_ids(&diff_ids),
            diff_ids,
            platform: Platform {
                os: "linux".to_owned(),
                architecture: "amd64".to_owned(),
                variant: None,
            },
            size: 0,
            upper: None,
        }
    }
}

/// Reads `image` from `docker`, checking that its tag still names the ID that was built.
pub async fn inspect(docker: &Docker, image: &BuiltImage) -> Result<Image, LoadError> {
    let reference = image.image.to_string();
    let inspected = docker
        .inspect_image(&reference)
        .await
        .map_err(|source| LoadError::Engine {
            action: format!("inspect `{reference}`"),
            source,
        })?;
    let found = inspected.id.clone().unwrap_or_default();
    if found != image.id {
        return Err(LoadError::Retagged {
            image: reference,
            expected: image.id.clone(),
            found,
        });
    }
    Image::from_inspect(&reference, &inspected).map_err(|what| LoadError::Unreadable {
        image: reference,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspected_image_gives_its_chain_and_platform() {
        let inspected: ImageInspect = serde_json::from_str(
            r#"{
                "Id": "sha256:2cad18b2ddfb67dab6675adad55731fee84cf2bfd7bce759775d7c89fa3f7c36",
                "Os": "linux", "Architecture": "amd64", "Size": 212000000,
                "RootFS": {"Type": "layers", "Layers": [
                    "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
                    "sha256:aebb974d77aa5dad3e976c036a22d80140bec90f522bfdcaee75f83935a2942f"
                ]}
            }"#,
        )
        .unwrap();
        let image = Image::from_inspect("big:v1", &inspected).unwrap();
        assert_eq!(image.diff_ids.len(), 2);
        assert_eq!(
            image.chain[1].to_string(),
            "sha256:e9a37085294dbbd981be9936901be3aebc26c2ca47b353d4697c0cfa0770d083"
        );
        assert_eq!(image.platform.architecture, "amd64");
        assert_eq!(image.size, 212_000_000);

        let bad: ImageInspect = serde_json::from_str(
            r#"{"Id": "sha256:2cad18b2ddfb67dab6675adad55731fee84cf2bfd7bce759775d7c89fa3f7c36",
                "RootFS": {"Type": "layers", "Layers": ["sha256:nope"]}}"#,
        )
        .unwrap();
        assert_eq!(
            Image::from_inspect("big:v1", &bad).unwrap_err(),
            "its layer `sha256:nope`"
        );
    }
}
