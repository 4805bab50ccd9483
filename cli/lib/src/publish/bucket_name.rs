//! S3's rules for general purpose bucket names (AWS, "General purpose bucket naming
//! rules"), checked before any request: a name S3 can never accept is a typo, and the
//! answer S3 gives to it (a 404, a signature error, a redirect) would only mislead.

/// The rule `name` breaks, or `Ok` when S3 would accept it.
pub fn check(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("only lowercase letters, digits, dots (.) and hyphens (-) are allowed");
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
        return Err("it must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("it must not contain two adjacent dots");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it must not be formatted as an IP address");
    }
    if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return Err("the prefixes xn--, sthree- and amzn-s3-demo- are reserved");
    }
    if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        return Err("the suffixes -s3alias, --ol-s3, .mrap, --x-s3 and --table-s3 are reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn names_s3_accepts() {
        for name in ["abc", "firmware", "acme.fw-prod", "0-9", &"a".repeat(63)] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_s3_refuses_say_which_rule() {
        for (name, rule) in [
            ("ab", "3 to 63"),
            (&"a".repeat(64), "3 to 63"),
            ("Bad_Bucket!", "lowercase"),
            ("UPPER", "lowercase"),
            ("-abc", "begin and end"),
            ("abc.", "begin and end"),
            ("a..b", "adjacent dots"),
            ("192.168.5.4", "IP address"),
            ("xn--abc", "prefixes"),
            ("sthree-abc", "prefixes"),
            ("abc-s3alias", "suffixes"),
            ("abc--x-s3", "suffixes"),
        ] {
            let err = check(name).unwrap_err();
            assert!(err.contains(rule), "{name}: {err}");
        }
    }
}
