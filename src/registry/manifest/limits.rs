//! Caps on manifest size. Every string and list a manifest can carry is bounded so a
//! stored version, its search document and its API representation stay small and a
//! hostile upload cannot make the registry do unbounded work. Lengths of strings count
//! characters (Unicode scalar values), like the official JSON schema; `_BYTES` caps count
//! bytes of compact JSON.

/// Whole request body (JSON or YAML).
pub const MAX_MANIFEST_BYTES: usize = 2 * 1024 * 1024;
/// Nesting of YAML flow collections (`[`, `{`). The YAML scanner's cost grows with
/// tokens × flow depth, so deep flow nesting is refused before parsing; real manifests
/// (even JSON posted as YAML) stay far below this.
pub const MAX_YAML_FLOW_DEPTH: usize = 64;
/// Problems reported for one manifest; past this a final "too many problems" issue is added.
pub const MAX_ISSUES: usize = 100;

/// Any string without a stricter cap below.
pub const MAX_STRING: usize = 4096;
/// Short identifiers: repository id, runtime hints, value hints, argument names, subfolder.
pub const MAX_SHORT: usize = 255;
/// Any URL other than an icon's.
pub const MAX_URL: usize = 2048;

/// Server `name` (`namespace/name`), as in the official schema.
pub const MIN_NAME: usize = 3;
pub const MAX_NAME: usize = 200;
/// Server `description`, as in the official schema.
pub const MAX_DESCRIPTION: usize = 100;
/// Server `title`, as in the official schema.
pub const MAX_TITLE: usize = 100;
/// Server and package `version`, as in the official schema.
pub const MAX_VERSION: usize = 255;

pub const MAX_ICONS: usize = 16;
/// Icon `src`, as in the official schema.
pub const MAX_ICON_SRC: usize = 255;
pub const MAX_ICON_SIZES: usize = 16;

pub const MAX_PACKAGES: usize = 64;
pub const MAX_REMOTES: usize = 32;
/// Package `identifier` (a package name, image reference or download URL).
pub const MAX_IDENTIFIER: usize = 512;
/// `runtimeArguments` and `packageArguments`, each.
pub const MAX_ARGUMENTS: usize = 64;
/// Environment variables of one package or command (mcp.yaml: `secrets` + `config`).
pub const MAX_ENV_VARS: usize = 100;
pub const MAX_ENV_NAME: usize = 128;
/// Headers of one transport or remote (mcp.yaml remote: `secrets` + `config`).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_NAME: usize = 128;
/// Entries of one `variables` map.
pub const MAX_VARIABLES: usize = 32;
pub const MAX_VARIABLE_NAME: usize = 64;
/// Entries of one `choices` list.
pub const MAX_CHOICES: usize = 100;

pub const MAX_TOOLS: usize = 500;
pub const MAX_TOOL_NAME: usize = 128;
pub const MAX_TOOL_DESCRIPTION: usize = 4096;
/// One tool's `inputSchema`, serialized.
pub const MAX_INPUT_SCHEMA_BYTES: usize = 64 * 1024;

pub const MAX_CATEGORIES: usize = 32;
pub const MAX_TAGS: usize = 32;
/// One category or tag.
pub const MAX_SLUG: usize = 32;

/// `_meta["io.modelcontextprotocol.registry/publisher-provided"]`, serialized (official limit).
pub const MAX_PUBLISHER_META_BYTES: usize = 4096;

/// Local command `cmd`.
pub const MAX_CMD: usize = 1024;
/// Local command `args`.
pub const MAX_COMMAND_ARGS: usize = 64;
