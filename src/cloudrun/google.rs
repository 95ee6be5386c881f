//! The Google REST calls the Cloud Run target makes: Cloud Storage upload, Cloud Build
//! builds.create/get, Run Admin v2 services and operations, Cloud Logging entries:list.
//!
//! Wire rules kept here (docs/cloud-run.md): camelCase JSON, int64 as strings, a missing
//! `done` means "still running", unknown response fields are ignored, and an error body may
//! be Google's `{"error":{code,message,status}}` or not JSON at all (an HTML 404).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::auth::{TokenSource, urlencode};
use super::{CloudError, CloudRunConfig, Permission};

pub const STORAGE_CREATE: Permission = Permission {
    name: "storage.objects.create",
    role: "roles/storage.objectAdmin",
};
pub const BUILD_CREATE: Permission = Permission {
    name: "cloudbuild.builds.create",
    role: "roles/cloudbuild.builds.editor",
};
pub const BUILD_GET: Permission = Permission {
    name: "cloudbuild.builds.get",
    role: "roles/cloudbuild.builds.viewer",
};
pub const RUN_GET: Permission = Permission {
    name: "run.services.get",
    role: "roles/run.viewer",
};
pub const RUN_CREATE: Permission = Permission {
    name: "run.services.create",
    role: "roles/run.developer",
};
pub const RUN_UPDATE: Permission = Permission {
    name: "run.services.update",
    role: "roles/run.developer",
};
pub const RUN_DELETE: Permission = Permission {
    name: "run.services.delete",
    role: "roles/run.developer",
};
pub const RUN_OPERATIONS: Permission = Permission {
    name: "run.operations.get",
    role: "roles/run.viewer",
};
pub const RUN_SET_IAM: Permission = Permission {
    name: "run.services.setIamPolicy",
    role: "roles/run.admin",
};
pub const LOGS_LIST: Permission = Permission {
    name: "logging.logEntries.list",
    role: "roles/logging.viewer",
};

pub struct Google {
    pub cfg: Arc<CloudRunConfig>,
    pub tokens: Arc<TokenSource>,
    http: reqwest::Client,
}

/// A finished long-running operation: its `response`, or the `error` message.
pub type OpResult = Result<Value, String>;

impl Google {
    pub fn new(cfg: Arc<CloudRunConfig>, tokens: Arc<TokenSource>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Google { cfg, tokens, http }
    }

    fn base(url: &str) -> &str {
        url.trim_end_matches('/')
    }

    fn parent(&self) -> String {
        format!(
            "projects/{}/locations/{}",
            self.cfg.project, self.cfg.region
        )
    }

    /// One authenticated call. `Ok(None)` is a 404 when `missing_ok`.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Body>,
        perm: Permission,
        missing_ok: bool,
    ) -> Result<Option<Value>, CloudError> {
        let token = self.tokens.access_token().await?;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.expose())
            .header("x-goog-user-project", &self.cfg.project);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Bytes(ct, b)) => req.header("content-type", ct).body(b),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| CloudError::Http(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let is_json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("json"));
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Some(json!({})));
            }
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| CloudError::Unexpected {
                    url: url.into(),
                    status,
                    what: format!("unreadable JSON: {e}"),
                });
        }
        let google = is_json
            .then(|| serde_json::from_str::<Value>(&text).ok())
            .flatten()
            .filter(|v| v["error"].is_object());
        let Some(err) = google else {
            return Err(CloudError::Unexpected {
                url: url.into(),
                status,
                what: if text.trim_start().starts_with('<') {
                    "an HTML page, not a Google API answer".into()
                } else {
                    "not a Google API error body".into()
                },
            });
        };
        let e = &err["error"];
        let message = e["message"].as_str().unwrap_or_default().to_string();
        let status_name = e["status"].as_str().unwrap_or_default().to_string();
        match status {
            404 if missing_ok => Ok(None),
            401 | 403 => Err(CloudError::Denied {
                status,
                status_name,
                permission: perm,
                message,
            }),
            _ => Err(CloudError::Google {
                status,
                status_name,
                message,
            }),
        }
    }

    async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        perm: Permission,
    ) -> Result<Value, CloudError> {
        Ok(self
            .call(method, url, body.map(Body::Json), perm, false)
            .await?
            .unwrap_or_default())
    }

    /// Upload a build context (`.tar.gz`) to the staging bucket.
    pub async fn upload(&self, object: &str, bytes: Vec<u8>) -> Result<(), CloudError> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            Self::base(&self.cfg.storage_url),
            urlencode(&self.cfg.staging_bucket),
            urlencode(object)
        );
        self.call(
            reqwest::Method::POST,
            &url,
            Some(Body::Bytes("application/gzip", bytes)),
            STORAGE_CREATE,
            false,
        )
        .await?;
        Ok(())
    }

    /// Start a Cloud Build build; returns its id.
    pub async fn create_build(&self, build: Value) -> Result<String, CloudError> {
        let url = format!(
            "{}/v1/{}/builds",
            Self::base(&self.cfg.build_url),
            self.parent()
        );
        let op = self
            .json(reqwest::Method::POST, &url, Some(build), BUILD_CREATE)
            .await?;
        op.pointer("/metadata/build/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CloudError::Unexpected {
                url,
                status: 200,
                what: "an operation without metadata.build.id".into(),
            })
    }

    pub async fn get_build(&self, id: &str) -> Result<Value, CloudError> {
        let url = format!(
            "{}/v1/{}/builds/{}",
            Self::base(&self.cfg.build_url),
            self.parent(),
            urlencode(id)
        );
        self.json(reqwest::Method::GET, &url, None, BUILD_GET).await
    }

    fn services_url(&self) -> String {
        format!(
            "{}/v2/{}/services",
            Self::base(&self.cfg.run_url),
            self.parent()
        )
    }

    pub async fn get_service(&self, name: &str) -> Result<Option<Value>, CloudError> {
        let url = format!("{}/{}", self.services_url(), urlencode(name));
        self.call(reqwest::Method::GET, &url, None, RUN_GET, true)
            .await
    }

    /// Create the service; returns the operation.
    pub async fn create_service(&self, name: &str, body: Value) -> Result<Value, CloudError> {
        let url = format!("{}?serviceId={}", self.services_url(), urlencode(name));
        self.json(reqwest::Method::POST, &url, Some(body), RUN_CREATE)
            .await
    }

    /// Replace the service's spec (no updateMask: the whole object); returns the operation.
    pub async fn patch_service(&self, name: &str, body: Value) -> Result<Value, CloudError> {
        let url = format!("{}/{}", self.services_url(), urlencode(name));
        self.json(reqwest::Method::PATCH, &url, Some(body), RUN_UPDATE)
            .await
    }

    /// Make `member` the service's only invoker (replaces the whole policy).
    pub async fn set_invoker(&self, name: &str, member: &str) -> Result<(), CloudError> {
        let url = format!("{}/{}:setIamPolicy", self.services_url(), urlencode(name));
        let body =
            json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": [member]}]}});
        self.json(reqwest::Method::POST, &url, Some(body), RUN_SET_IAM)
            .await?;
        Ok(())
    }

    /// Delete the service; `None` when it was already gone.
    pub async fn delete_service(&self, name: &str) -> Result<Option<Value>, CloudError> {
        let url = format!("{}/{}", self.services_url(), urlencode(name));
        self.call(reqwest::Method::DELETE, &url, None, RUN_DELETE, true)
            .await
    }

    /// Poll a Run operation until it is done (a missing `done` is "not yet").
    pub async fn wait_operation(&self, op: Value) -> Result<OpResult, CloudError> {
        let timeout = Duration::from_secs(self.cfg.deploy_timeout_secs.max(1));
        let started = tokio::time::Instant::now();
        let mut op = op;
        let mut interval = Duration::from_millis(self.cfg.poll_interval_ms.max(1));
        loop {
            if op["done"].as_bool() == Some(true) {
                if let Some(e) = op.get("error").filter(|e| e.is_object()) {
                    return Ok(Err(e["message"]
                        .as_str()
                        .unwrap_or("the operation failed without a message")
                        .to_string()));
                }
                return Ok(Ok(op["response"].clone()));
            }
            if started.elapsed() > timeout {
                return Err(CloudError::Timeout(timeout.as_secs()));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(15));
            let name = op["name"].as_str().unwrap_or_default().to_string();
            if name.is_empty() {
                return Err(CloudError::Unexpected {
                    url: self.services_url(),
                    status: 200,
                    what: "an operation without a name".into(),
                });
            }
            let url = format!("{}/v2/{name}", Self::base(&self.cfg.run_url));
            op = self
                .json(reqwest::Method::GET, &url, None, RUN_OPERATIONS)
                .await?;
        }
    }

    /// One page of Cloud Logging entries.
    pub async fn list_entries(
        &self,
        filter: &str,
        page_token: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), CloudError> {
        let url = format!("{}/v2/entries:list", Self::base(&self.cfg.logging_url));
        let mut body = json!({
            "resourceNames": [format!("projects/{}", self.cfg.project)],
            "filter": filter,
            "orderBy": "timestamp asc",
            "pageSize": 200,
        });
        if let Some(t) = page_token {
            body["pageToken"] = Value::String(t.to_string());
        }
        let page = self
            .json(reqwest::Method::POST, &url, Some(body), LOGS_LIST)
            .await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        let next = page["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok((entries, next))
    }
}

enum Body {
    Json(Value),
    Bytes(&'static str, Vec<u8>),
}
