//! Google credentials: OAuth2 access tokens (for the Google APIs) and ID tokens (for
//! invoking a private Cloud Run service), from a service-account key (RS256 JWT-bearer grant,
//! RFC 7523) or from the metadata server. Both are cached and refreshed five minutes before
//! they expire; one fetch at a time, so a burst of requests costs one token call.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};

use super::CloudError;
use crate::ambient::Ambient;
use crate::vault::SecretValue;

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Refresh this long before expiry: a token must outlive the call it is sent with.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;
/// `iat` is backdated to absorb clock skew (as Google's own clients do).
const CLOCK_SKEW_S: i64 = 10;

/// The fields of a service-account key file that matter here.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    #[serde(default)]
    private_key_id: String,
    private_key: String,
    token_uri: String,
}

pub struct ServiceAccount {
    pub email: String,
    key_id: String,
    key: RsaKeyPair,
    pub token_uri: String,
}

impl ServiceAccount {
    pub fn from_file(path: &Path, token_url: Option<&str>) -> Result<Self, CloudError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CloudError::Unavailable(format!(
                "cannot read the credentials file {}: {e}",
                path.display()
            ))
        })?;
        Self::from_json(&text, token_url)
            .map_err(|e| CloudError::Unavailable(format!("{}: {e}", path.display())))
    }

    pub fn from_json(text: &str, token_url: Option<&str>) -> Result<Self, String> {
        let k: KeyFile = serde_json::from_str(text)
            .map_err(|e| format!("not a service-account key file: {e}"))?;
        if k.kind != "service_account" {
            return Err(format!(
                "the key file's type is {:?}, not \"service_account\"",
                k.kind
            ));
        }
        let key = parse_rsa_key(&k.private_key)?;
        Ok(ServiceAccount {
            email: k.client_email,
            key_id: k.private_key_id,
            key,
            token_uri: token_url.map(str::to_owned).unwrap_or(k.token_uri),
        })
    }

    /// A signed assertion for the token endpoint: `scope` for an access token, or
    /// `target_audience` for an ID token.
    fn assertion(&self, now_s: i64, extra: (&str, &str)) -> Result<String, CloudError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let iat = now_s - CLOCK_SKEW_S;
        let mut claims = json!({
            "iss": self.email,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + 3600,
        });
        claims[extra.0] = Value::String(extra.1.to_string());
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| {
                CloudError::Unavailable("cannot sign with the service-account key".into())
            })?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
fn parse_rsa_key(pem: &str) -> Result<RsaKeyPair, String> {
    let pkcs1 = pem.contains("BEGIN RSA PRIVATE KEY");
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| "the private key is not valid PEM".to_string())?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|e| format!("the private key is not a usable RSA key: {e}"))
}

/// Where tokens come from.
pub enum Credentials {
    ServiceAccount(Box<ServiceAccount>),
    /// The metadata server (`http://HOST`), when Sigil itself runs on Google Cloud.
    Metadata {
        base: String,
    },
}

impl Credentials {
    pub fn metadata(host: Option<&str>) -> Self {
        let host = host
            .map(str::to_owned)
            .or_else(|| std::env::var("GCE_METADATA_HOST").ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "metadata.google.internal".into());
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            host
        } else {
            format!("http://{host}")
        };
        Credentials::Metadata { base }
    }
}

#[derive(Clone)]
struct Cached {
    token: SecretValue,
    expires_at_ms: i64,
}

pub struct TokenSource {
    creds: Credentials,
    http: reqwest::Client,
    ambient: Ambient,
    access: tokio::sync::Mutex<Option<Cached>>,
    ids: tokio::sync::Mutex<HashMap<String, Cached>>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource {
    pub fn new(creds: Credentials, ambient: Ambient) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        TokenSource {
            creds,
            http,
            ambient,
            access: tokio::sync::Mutex::new(None),
            ids: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The identity Sigil calls Google as, when it is known locally.
    pub fn email(&self) -> Option<&str> {
        match &self.creds {
            Credentials::ServiceAccount(sa) => Some(&sa.email),
            Credentials::Metadata { .. } => None,
        }
    }

    fn fresh(&self, c: &Cached) -> bool {
        self.ambient.now_ms() < c.expires_at_ms - REFRESH_MARGIN_MS
    }

    /// An OAuth2 access token for the cloud-platform scope.
    pub async fn access_token(&self) -> Result<SecretValue, CloudError> {
        let mut slot = self.access.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| self.fresh(c)) {
            return Ok(c.token.clone());
        }
        let now = self.ambient.now_ms();
        let reply = match &self.creds {
            Credentials::ServiceAccount(sa) => {
                let jwt = sa.assertion(now / 1000, ("scope", SCOPE))?;
                self.grant(&sa.token_uri, &jwt).await?
            }
            Credentials::Metadata { base } => {
                let url = format!(
                    "{base}/computeMetadata/v1/instance/service-accounts/default/token?scopes={SCOPE}"
                );
                let text = self.metadata_get(&url).await?;
                serde_json::from_str(&text).map_err(|e| CloudError::Unexpected {
                    url,
                    status: 200,
                    what: format!("not a token: {e}"),
                })?
            }
        };
        let token = reply.access_token.ok_or_else(|| CloudError::Token {
            error: "no_access_token".into(),
            description: "the token endpoint answered without an access_token".into(),
        })?;
        let c = Cached {
            token: SecretValue::new(token),
            expires_at_ms: now + reply.expires_in.unwrap_or(3600) * 1000,
        };
        *slot = Some(c.clone());
        Ok(c.token)
    }

    /// An ID token whose audience is `audience` (a Cloud Run service URL).
    pub async fn id_token(&self, audience: &str) -> Result<SecretValue, CloudError> {
        let mut map = self.ids.lock().await;
        if let Some(c) = map.get(audience).filter(|c| self.fresh(c)) {
            return Ok(c.token.clone());
        }
        let now = self.ambient.now_ms();
        let token = match &self.creds {
            Credentials::ServiceAccount(sa) => {
                let jwt = sa.assertion(now / 1000, ("target_audience", audience))?;
                self.grant(&sa.token_uri, &jwt)
                    .await?
                    .id_token
                    .ok_or_else(|| CloudError::Token {
                        error: "no_id_token".into(),
                        description: "the token endpoint answered without an id_token".into(),
                    })?
            }
            Credentials::Metadata { base } => {
                let url = format!(
                    "{base}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
                    urlencode(audience)
                );
                self.metadata_get(&url).await?.trim().to_string()
            }
        };
        // The expiry is the token's own `exp`; an unreadable one is used once.
        let expires_at_ms = jwt_exp(&token).map_or(now, |s| s * 1000);
        let c = Cached {
            token: SecretValue::new(token),
            expires_at_ms,
        };
        map.insert(audience.to_string(), c.clone());
        Ok(c.token)
    }

    async fn grant(&self, token_uri: &str, jwt: &str) -> Result<TokenReply, CloudError> {
        let body = format!("grant_type={}&assertion={jwt}", urlencode(JWT_BEARER));
        let resp = self
            .http
            .post(token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| CloudError::Http(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status == 200 {
            return serde_json::from_str(&text).map_err(|e| CloudError::Unexpected {
                url: token_uri.into(),
                status,
                what: format!("not a token: {e}"),
            });
        }
        match serde_json::from_str::<OAuthError>(&text) {
            Ok(e) => Err(CloudError::Token {
                error: e.error,
                description: e.error_description,
            }),
            Err(_) => Err(CloudError::Unexpected {
                url: token_uri.into(),
                status,
                what: "not an OAuth2 answer".into(),
            }),
        }
    }

    async fn metadata_get(&self, url: &str) -> Result<String, CloudError> {
        let resp = self
            .http
            .get(url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| {
                CloudError::Unavailable(format!(
                    "no credentials_file is configured and the metadata server is unreachable ({})",
                    e.without_url()
                ))
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != 200 {
            return Err(CloudError::Token {
                error: format!("metadata_http_{status}"),
                description: text.chars().take(200).collect(),
            });
        }
        Ok(text)
    }
}

/// The `exp` claim (seconds) of a JWT, unverified: only to know when to fetch a new one.
pub fn jwt_exp(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["exp"].as_i64()
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_exp_reads_the_claim() {
        let p = URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000}"#);
        assert_eq!(jwt_exp(&format!("h.{p}.s")), Some(1_700_000_000));
        assert_eq!(jwt_exp("garbage"), None);
    }

    #[test]
    fn a_key_file_of_another_type_is_refused() {
        let e = ServiceAccount::from_json(
            r#"{"type":"authorized_user","client_email":"a","private_key":"x","token_uri":"t"}"#,
            None,
        )
        .err()
        .unwrap();
        assert!(e.contains("authorized_user"), "{e}");
    }

    #[test]
    fn urlencode_escapes_reserved() {
        assert_eq!(urlencode("a b:c/d"), "a%20b%3Ac%2Fd");
    }
}
