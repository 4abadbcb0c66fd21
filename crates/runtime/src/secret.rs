//! Values that must never reach a log: a secret prints as `[redacted]` in
//! `Debug`, and a URL's password is hidden when the URL is shown.

use std::fmt;
use std::str::FromStr;

/// A secret setting (the JWT key). Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.into())
    }
}

/// A URL as it may be shown: `scheme://user:[redacted]@host/...` when it
/// carries a password, as PostgreSQL and Redis URLs may.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_and_a_url_s_password_never_show() {
        let secret = Secret::from("hunter2-hunter2-hunter2-hunter2-!");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/holdfast"),
            "postgres://app:[redacted]@db:5432/holdfast"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379"),
            "redis://:[redacted]@cache:6379"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/holdfast"),
            "postgres://postgres@127.0.0.1:5432/holdfast"
        );
    }
}
