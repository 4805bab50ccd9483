//! The little URL handling the agent needs, without an allocator.
//!
//! A manifest names its image by file name, resolved against the manifest's *configured*
//! URL, never against where redirects led: on GitHub Releases the manifest URL
//! `.../releases/latest/download/x.manifest` redirects to a one-time signed URL on another
//! host, and only the original directory also serves the image. Redirect targets
//! themselves are resolved with [`resolve_location`] by the HTTP client.

/// Why a URL could not be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `http://` or `https://`.
    #[error("URL scheme is not http or https")]
    Scheme,
    /// No host, a bad port, or characters that do not belong in a URL.
    #[error("malformed URL")]
    Malformed,
    /// The result does not fit the caller's buffer.
    #[error("URL too long for the buffer")]
    TooLong,
}

/// The scheme of a URL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
}

/// An absolute URL split into the parts a client connects with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Url<'a> {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or address, as written (IPv6 literals keep their brackets).
    pub host: &'a str,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub path: &'a str,
}

impl<'a> Url<'a> {
    /// Splits an absolute `http`/`https` URL. Userinfo (`user@host`) is refused: the agent
    /// has no use for it and it is a classic way to disguise a host.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        if !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(UrlError::Malformed);
        }
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(url, "http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "https://") {
            (Scheme::Https, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let rest = rest.split('#').next().unwrap_or("");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::Malformed);
        }
        let (host, port) = split_port(authority)?;
        let port = match (port, scheme) {
            (Some(p), _) => p,
            (None, Scheme::Http) => 80,
            (None, Scheme::Https) => 443,
        };
        let path = if path.is_empty() { "/" } else { path };
        if !path.starts_with('/') {
            // "http://host?x": a query without a path; not worth supporting.
            return Err(UrlError::Malformed);
        }
        Ok(Url {
            scheme,
            host,
            port,
            path,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(UrlError::Malformed)?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(UrlError::Malformed)?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::Malformed);
    }
    let port = match port {
        None => None,
        Some(p) => {
            let n = crate::http::parse_u64(p).ok_or(UrlError::Malformed)?;
            Some(
                u16::try_from(n)
                    .ok()
                    .filter(|&n| n != 0)
                    .ok_or(UrlError::Malformed)?,
            )
        }
    };
    Ok((host, port))
}

/// Writes pieces into a caller buffer and hands back the text.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Out<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Out { buf, len: 0 }
    }

    fn push(&mut self, s: &str) -> Result<(), UrlError> {
        let end = self.len.checked_add(s.len()).ok_or(UrlError::TooLong)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(UrlError::TooLong)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }

    fn finish(self) -> Result<&'b str, UrlError> {
        core::str::from_utf8(&self.buf[..self.len]).map_err(|_| UrlError::Malformed)
    }
}

/// The URL of the file `name` in the same directory as `manifest_url`: query and fragment
/// are dropped, then everything after the last `/` of the path is replaced by `name`.
/// `name` must be a plain file name (the manifest's `ImageName` rules guarantee it).
pub fn resolve_sibling<'b>(
    manifest_url: &str,
    name: &str,
    buf: &'b mut [u8],
) -> Result<&'b str, UrlError> {
    let url = Url::parse(manifest_url)?;
    // The manifest's name rules already guarantee this; checked again here so the
    // result is always a URL `Url::parse` accepts, whoever calls.
    let visible = name.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if name.is_empty()
        || !visible
        || name.contains(['/', '?', '#', '\\'])
        || name == "."
        || name == ".."
    {
        return Err(UrlError::Malformed);
    }
    let path = url.path.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    // Everything before the path, exactly as configured (scheme, host and port).
    let before_path = origin_of(manifest_url, &url);
    let mut out = Out::new(buf);
    out.push(before_path)?;
    out.push(if dir.is_empty() { "/" } else { dir })?;
    out.push(name)?;
    out.finish()
}

/// `scheme://authority` of a parsed URL, as a prefix of the original text.
fn origin_of<'a>(original: &'a str, url: &Url<'_>) -> &'a str {
    let scheme_len = match url.scheme {
        Scheme::Http => "http://".len(),
        Scheme::Https => "https://".len(),
    };
    let rest = &original[scheme_len..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &original[..scheme_len + end]
}

/// Resolves a redirect's `Location` against the URL that answered with it (RFC 3986
/// reference resolution, minus dot-segment removal, which redirects do not need).
pub fn resolve_location<'b>(
    base: &str,
    location: &str,
    buf: &'b mut [u8],
) -> Result<&'b str, UrlError> {
    let location = location.trim();
    if location.is_empty() || !location.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(UrlError::Malformed);
    }
    let mut out = Out::new(buf);
    if strip_prefix_ci(location, "http://").is_some()
        || strip_prefix_ci(location, "https://").is_some()
    {
        Url::parse(location)?;
        out.push(location)?;
        return out.finish();
    }
    let base_url = Url::parse(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        out.push(match base_url.scheme {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        })?;
        out.push(rest)?;
        let text = out.finish()?;
        Url::parse(text)?;
        return Ok(text);
    }
    if location.contains("://") {
        // Another scheme (ftp://, file://): never followed.
        return Err(UrlError::Scheme);
    }
    out.push(origin_of(base, &base_url))?;
    if location.starts_with('/') {
        out.push(location)?;
    } else {
        let path = base_url.path.split('?').next().unwrap_or("/");
        if location.starts_with('?') {
            out.push(path)?;
        } else {
            out.push(&path[..path.rfind('/').map_or(0, |i| i + 1)])?;
        }
        out.push(location)?;
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sibling(base: &str, name: &str) -> Result<String, UrlError> {
        let mut buf = [0u8; 256];
        resolve_sibling(base, name, &mut buf).map(str::to_owned)
    }

    extern crate std;
    use std::borrow::ToOwned;
    use std::string::String;

    #[test]
    fn parses_parts() {
        let u = Url::parse("http://example.com:8080/a/b.manifest?x=1#frag").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.port, u.path),
            (Scheme::Http, "example.com", 8080, "/a/b.manifest?x=1")
        );
        let u = Url::parse("HTTPS://[::1]/").unwrap();
        assert_eq!((u.scheme, u.host, u.port), (Scheme::Https, "[::1]", 443));
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
    }

    #[test]
    fn refuses_bad_urls() {
        assert_eq!(Url::parse("ftp://h/x"), Err(UrlError::Scheme));
        assert_eq!(Url::parse("h/x"), Err(UrlError::Scheme));
        for bad in [
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:x/",
            "http://user@evil/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert_eq!(Url::parse(bad), Err(UrlError::Malformed), "{bad}");
        }
    }

    #[test]
    fn image_is_next_to_the_manifest() {
        assert_eq!(
            sibling("http://h:81/fw/dev.stable.manifest", "dev-1.0.0-abcd.ota").unwrap(),
            "http://h:81/fw/dev-1.0.0-abcd.ota"
        );
        assert_eq!(
            sibling(
                "https://github.com/o/r/releases/latest/download/d.stable.manifest?x=/y#f",
                "i.ota"
            )
            .unwrap(),
            "https://github.com/o/r/releases/latest/download/i.ota"
        );
        assert_eq!(sibling("http://h", "i.ota").unwrap(), "http://h/i.ota");
        assert_eq!(sibling("http://h/", "i.ota").unwrap(), "http://h/i.ota");
        assert_eq!(sibling("http://h?q=1", "i.ota"), Err(UrlError::Malformed));
    }

    #[test]
    fn image_name_cannot_escape_the_directory() {
        for bad in [
            "", "../x", "a/b", "x?y", "x#y", "..", "a\\b", "a b", "\0x", "x\u{e9}",
        ] {
            assert_eq!(
                sibling("http://h/d/m", bad),
                Err(UrlError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn sibling_respects_the_buffer() {
        let mut buf = [0u8; 16];
        assert_eq!(
            resolve_sibling("http://h/dir/m", "image.ota", &mut buf),
            Err(UrlError::TooLong)
        );
    }

    #[test]
    fn redirect_locations() {
        let r = |base: &str, loc: &str| {
            let mut buf = [0u8; 256];
            resolve_location(base, loc, &mut buf).map(str::to_owned)
        };
        let base = "http://a:1/x/y/z?q";
        assert_eq!(r(base, "http://b/c").unwrap(), "http://b/c");
        assert_eq!(r(base, "//b:2/c").unwrap(), "http://b:2/c");
        assert_eq!(r(base, "/c").unwrap(), "http://a:1/c");
        assert_eq!(r(base, "c?d").unwrap(), "http://a:1/x/y/c?d");
        assert_eq!(r(base, "?d").unwrap(), "http://a:1/x/y/z?d");
        assert_eq!(r(base, "file:///etc/passwd"), Err(UrlError::Scheme));
        assert_eq!(r(base, ""), Err(UrlError::Malformed));
        assert_eq!(r(base, "//"), Err(UrlError::Malformed));
    }
}
