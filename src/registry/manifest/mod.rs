// PLACEHOLDER until the manifest module lands (overwritten by it).
pub mod model;
pub use model::*;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format { McpYaml, ServerJson }
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue { pub path: String, pub message: String }
pub struct ParseOptions<'a> { pub default_namespace: Option<&'a str> }
pub fn parse(body: &[u8], _format: Format, _opts: &ParseOptions) -> Result<ServerVersion, Vec<Issue>> {
    serde_json::from_slice(body).map_err(|e| vec![Issue { path: String::new(), message: e.to_string() }])
}
pub fn detect_format(_content_type: Option<&str>, _body: &[u8]) -> Format { Format::ServerJson }
