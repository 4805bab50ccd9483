//! Hosts for ota-sign's publish tests, all on loopback and all started by the test that
//! uses them:
//!
//! * [`nginx::Nginx`]: Debian's nginx serving a directory (ETag, Range, cache headers);
//! * [`s3::S3sFs`]: `s3s-fs`, an S3 server on a directory, with signature checking on;
//! * [`github::FakeGitHub`]: the subset of the GitHub REST API that publish uses, with the
//!   separate upload host and the 302 chain of `releases/latest/download`;
//! * [`http`]: a device-like HTTP/1.1 client (conditional requests, ranges, redirects);
//! * [`proxy::Proxy`]: counts requests and bytes in front of a server, and can hold one
//!   request so a test can kill the client mid-upload;
//! * [`images`]: signed synthetic `.ota` images;
//! * [`static_host::StaticHost`]: a static host on a directory or in-memory files that can
//!   misbehave on purpose (drops, stalls, lies about lengths, 5xx), for the simulator's and
//!   the CLI's tests and the demo without nginx.
//!
//! A missing server binary is a test failure with instructions, never a silent skip,
//! unless `OTA_SKIP_SERVER_TESTS=1`.
#![forbid(unsafe_code)]

pub mod github;
pub mod http;
pub mod images;
pub mod nginx;
pub mod proxy;
pub mod s3;
pub mod static_host;
mod util;

pub use util::{free_port, skip_server_tests};
