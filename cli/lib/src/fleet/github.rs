//! GitHub Releases keeps no access log anyone can read; the one signal it gives is a
//! download count per release asset (`assets[].download_count` in the releases API).

use serde::{Deserialize, Serialize};

use super::FleetError;

/// Most pages of 100 releases read (bounded: a repository with more is reported as far
/// as this goes).
pub const MAX_PAGES: usize = 10;

#[derive(Deserialize)]
struct ApiRelease {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    assets: Vec<ApiAsset>,
}

#[derive(Deserialize)]
struct ApiAsset {
    name: String,
    #[serde(default)]
    download_count: u64,
}

/// Downloads of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetDownloads {
    /// The release's tag.
    pub release: String,
    /// The asset's file name.
    pub asset: String,
    /// Downloads GitHub counted.
    pub downloads: u64,
}

/// Download counts of every asset of every (non-draft) release of `repo` (`owner/name`),
/// from the API at `api` (`https://api.github.com`), with `token` when given.
pub fn download_counts(
    api: &str,
    repo: &str,
    token: Option<&str>,
) -> Result<Vec<AssetDownloads>, FleetError> {
    let failed = |message: String, status: Option<u16>| FleetError::Github {
        repo: repo.to_owned(),
        message,
        status,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string(), None))?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("ota-sign/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| failed(e.to_string(), None))?;
    let mut out = Vec::new();
    runtime.block_on(async {
        for page in 1..=MAX_PAGES {
            let url = format!(
                "{}/repos/{repo}/releases?per_page=100&page={page}",
                api.trim_end_matches('/')
            );
            let mut request = client
                .get(&url)
                .header("Accept", "application/vnd.github+json");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request
                .send()
                .await
                .map_err(|e| failed(e.to_string(), None))?;
            let status = response.status();
            if !status.is_success() {
                return Err(failed(
                    format!("{url} answered {status}"),
                    Some(status.as_u16()),
                ));
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| failed(format!("{url}: {e}"), None))?;
            let releases: Vec<ApiRelease> = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("{url}: not a releases list: {e}"), None))?;
            let last = releases.len() < 100;
            for release in releases.into_iter().filter(|r| !r.draft) {
                for asset in release.assets {
                    out.push(AssetDownloads {
                        release: release.tag_name.clone(),
                        asset: asset.name,
                        downloads: asset.download_count,
                    });
                }
            }
            if last {
                break;
            }
        }
        Ok(())
    })?;
    Ok(out)
}
