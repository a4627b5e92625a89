//! Image config and manifest JSON for the code image: the base's documents plus one layer.
//!
//! Works on `serde_json::Value` so fields this code does not know survive untouched (the
//! workspace enables `preserve_order`, so key order survives too and output is reproducible).
//! No I/O lives here.

use serde_json::{Map, Value, json};

use super::extra::ExtraLayer;
use crate::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
};

/// What the code layer (and the extra layers below it) change in the base image's config.
#[derive(Debug, Clone)]
pub(crate) struct ConfigChange<'a> {
    /// Layers between the base's and the code layer, in order.
    pub(crate) extra_layers: &'a [ExtraLayer],
    /// `sha256:<hex>` of the uncompressed layer.
    pub(crate) diff_id: &'a str,
    /// Seconds since the epoch for `created` (image and history entry).
    pub(crate) created_epoch: u64,
    /// The working directory, e.g. `/app`.
    pub(crate) workdir: &'a str,
    /// Variables to set; an existing variable of the same name is replaced in place.
    pub(crate) env: &'a [(String, String)],
    /// Path-list variables (such as `PYTHONPATH`) whose value goes in front of the base's, joined
    /// with `:`; set as is when the base has no (or an empty) value. Applied after `env`.
    pub(crate) env_prepend: &'a [(String, String)],
    /// A new entrypoint, or `None` to keep the base's.
    pub(crate) entrypoint: Option<&'a [String]>,
    /// A new command, or `None` to keep the base's.
    pub(crate) cmd: Option<&'a [String]>,
}

/// A content descriptor for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// `sha256:<hex>`.
    pub(crate) digest: String,
    /// Size in bytes.
    pub(crate) size: u64,
}

/// Returns the base config with the code layer applied, serialised compactly.
pub(crate) fn extend_config(base: &Value, change: &ConfigChange<'_>) -> Result<Vec<u8>, String> {
    let mut config = base.clone();
    let root = config
        .as_object_mut()
        .ok_or("the image config is not a JSON object")?;
    let created = rfc3339_utc(change.created_epoch);

    let rootfs = root
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let diff_ids = rootfs
        .as_object_mut()
        .ok_or("`rootfs` is not a JSON object")?
        .entry("diff_ids")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or("`rootfs.diff_ids` is not an array")?;
    for layer in change.extra_layers {
        diff_ids.push(Value::String(layer.diff_id.clone()));
    }
    diff_ids.push(Value::String(change.diff_id.to_owned()));

    let history = root
        .entry("history")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or("`history` is not an array")?;
    for layer in change.extra_layers {
        history.push(json!({"created": created, "created_by": layer.created_by}));
    }
    history.push(json!({
        "created": created,
        "created_by": format!("dagster-deploy native build: COPY . {}", change.workdir),
        "comment": "code layer",
    }));
    root.insert("created".to_owned(), Value::String(created));

    let container_config = root
        .entry("config")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or("`config` is not a JSON object")?;
    container_config.insert(
        "WorkingDir".to_owned(),
        Value::String(change.workdir.to_owned()),
    );
    merge_env(container_config, change.env, change.env_prepend)?;
    if let Some(entrypoint) = change.entrypoint {
        container_config.insert("Entrypoint".to_owned(), json!(entrypoint));
    }
    if let Some(cmd) = change.cmd {
        container_config.insert("Cmd".to_owned(), json!(cmd));
    }
    serde_json::to_vec(&config).map_err(|error| error.to_string())
}

/// Sets each variable of `set` in `Env` (`NAME=value` strings): replaced in place when the name
/// exists, appended in the given order otherwise. Then puts each value of `prepend` in front of
/// the variable's current value with a `:` (an empty or missing value is simply replaced, so no
/// empty path entry, which Python would read as the current directory, is ever added).
fn merge_env(
    container_config: &mut Map<String, Value>,
    set: &[(String, String)],
    prepend: &[(String, String)],
) -> Result<(), String> {
    if set.is_empty() && prepend.is_empty() {
        return Ok(());
    }
    let entries = container_config.entry("Env").or_insert_with(|| json!([]));
    if entries.is_null() {
        *entries = json!([]);
    }
    let entries = entries
        .as_array_mut()
        .ok_or("`config.Env` is not an array")?;
    let value_of = |entries: &[Value], name: &str| -> Option<usize> {
        entries.iter().position(|entry| {
            entry
                .as_str()
                .is_some_and(|text| text.split_once('=').map_or(text, |(key, _)| key) == name)
        })
    };
    let assign = |entries: &mut Vec<Value>, name: &str, value: String| {
        let assignment = Value::String(format!("{name}={value}"));
        match value_of(entries, name) {
            Some(index) => entries[index] = assignment,
            None => entries.push(assignment),
        }
    };
    for (name, value) in set {
        assign(entries, name, value.clone());
    }
    for (name, value) in prepend {
        let current = value_of(entries, name)
            .and_then(|index| entries[index].as_str())
            .and_then(|text| text.split_once('='))
            .map(|(_, current)| current.to_owned())
            .unwrap_or_default();
        let combined = if current.is_empty() {
            value.clone()
        } else {
            format!("{value}:{current}")
        };
        assign(entries, name, combined);
    }
    Ok(())
}

/// Returns the base manifest with the config descriptor replaced and the layers appended, using
/// the media types of the base's format (Docker v2 or OCI).
pub(crate) fn extend_manifest(
    base: &Value,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<Vec<u8>, String> {
    let mut manifest = base.clone();
    let root = manifest
        .as_object_mut()
        .ok_or("the manifest is not a JSON object")?;
    let docker = is_docker_format(base);
    let (config_type, layer_type) = if docker {
        (DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_CONFIG, OCI_LAYER_GZIP)
    };
    root.insert(
        "config".to_owned(),
        json!({"mediaType": config_type, "size": config.size, "digest": config.digest}),
    );
    let manifest_layers = root
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .ok_or("the manifest has no `layers` array")?;
    for layer in layers {
        manifest_layers
            .push(json!({"mediaType": layer_type, "size": layer.size, "digest": layer.digest}));
    }
    serde_json::to_vec(&manifest).map_err(|error| error.to_string())
}

/// Whether a manifest is Docker v2 schema 2 (else OCI), from its media type or its config's.
pub(crate) fn is_docker_format(manifest: &Value) -> bool {
    let media_type = manifest.get("mediaType").and_then(Value::as_str);
    let config_type = manifest
        .pointer("/config/mediaType")
        .and_then(Value::as_str);
    media_type == Some(DOCKER_MANIFEST)
        || (media_type.is_none() && config_type.is_some_and(|kind| kind.contains("docker")))
}

/// The manifest's media type for the `Content-Type` of a push.
pub(crate) fn manifest_media_type(manifest: &Value) -> &'static str {
    if is_docker_format(manifest) {
        DOCKER_MANIFEST
    } else {
        OCI_MANIFEST
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339_utc(epoch_seconds: u64) -> String {
    let days = epoch_seconds / 86_400;
    let seconds_of_day = epoch_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Howard Hinnant's `civil_from_days` for non-negative day counts since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_config() -> Value {
        json!({
            "architecture": "amd64",
            "os": "linux",
            "x-unknown": {"kept": true},
            "config": {
                "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
                "Entrypoint": ["/entry"],
                "Cmd": ["python"],
                "Labels": {"a": "b"}
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}]
        })
    }

    fn change<'a>(env: &'a [(String, String)]) -> ConfigChange<'a> {
        ConfigChange {
            extra_layers: &[],
            diff_id: "sha256:code",
            created_epoch: 0,
            workdir: "/app",
            env,
            env_prepend: &[],
            entrypoint: None,
            cmd: None,
        }
    }

    fn apply(change: &ConfigChange<'_>) -> Value {
        let bytes = extend_config(&base_config(), change).expect("extend");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn extra_layers_go_between_the_base_and_the_code_layer() {
        let extra = [super::super::extra::ExtraLayer {
            digest: "sha256:depsblob".into(),
            diff_id: "sha256:deps".into(),
            size: 1,
            content: super::super::extra::LayerContent::InTarget,
            created_by: "uv pip install".into(),
        }];
        let change = ConfigChange {
            extra_layers: &extra,
            ..change(&[])
        };
        let config = apply(&change);
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!(["sha256:base", "sha256:deps", "sha256:code"])
        );
        let history: Vec<&str> = config["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["created_by"].as_str().unwrap())
            .collect();
        assert_eq!(
            history,
            [
                "base",
                "uv pip install",
                "dagster-deploy native build: COPY . /app"
            ]
        );
    }

    #[test]
    fn appends_diff_id_history_and_sets_workdir_keeping_the_rest() {
        let config = apply(&change(&[]));
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!(["sha256:base", "sha256:code"])
        );
        assert_eq!(config["history"][1]["created"], "1970-01-01T00:00:00Z");
        assert_eq!(
            config["history"][1]["created_by"],
            "dagster-deploy native build: COPY . /app"
        );
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(config["config"]["WorkingDir"], "/app");
        assert_eq!(config["config"]["Entrypoint"], json!(["/entry"]));
        assert_eq!(config["config"]["Cmd"], json!(["python"]));
        assert_eq!(config["config"]["Labels"], json!({"a": "b"}));
        assert_eq!(config["x-unknown"], json!({"kept": true}));
    }

    #[test]
    fn env_overrides_by_name_in_place_and_appends_new_names() {
        let env = [
            ("LANG".to_owned(), "en_US.UTF-8".to_owned()),
            ("DAGSTER_HOME".to_owned(), "/app/.dagster".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ];
        let config = apply(&change(&env));
        assert_eq!(
            config["config"]["Env"],
            json!([
                "PATH=/usr/bin",
                "LANG=en_US.UTF-8",
                "DAGSTER_HOME=/app/.dagster",
                "EMPTY="
            ])
        );
    }

    #[test]
    fn prepended_paths_go_in_front_of_the_base_value_without_empty_entries() {
        let prepend = [
            ("PYTHONPATH".to_owned(), "/app/src".to_owned()),
            ("LANG".to_owned(), "x".to_owned()),
        ];
        let mut change = change(&[]);
        change.env_prepend = &prepend;
        let config = apply(&change);
        assert_eq!(
            config["config"]["Env"],
            json!(["PATH=/usr/bin", "LANG=x:C.UTF-8", "PYTHONPATH=/app/src"])
        );

        let mut base = base_config();
        base["config"]["Env"] = json!(["PYTHONPATH=/opt/lib", "EMPTY="]);
        let empty = [("EMPTY".to_owned(), "/a".to_owned())];
        let both: Vec<(String, String)> = prepend[..1].iter().chain(&empty).cloned().collect();
        change.env_prepend = &both;
        let bytes = extend_config(&base, &change).expect("extend");
        let config: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            config["config"]["Env"],
            json!(["PYTHONPATH=/app/src:/opt/lib", "EMPTY=/a"])
        );
    }

    #[test]
    fn new_entrypoint_and_cmd_replace_the_base_ones() {
        let entrypoint = vec!["dagster".to_owned()];
        let cmd = vec!["api".to_owned(), "grpc".to_owned()];
        let mut change = change(&[]);
        change.entrypoint = Some(&entrypoint);
        change.cmd = Some(&cmd);
        let config = apply(&change);
        assert_eq!(config["config"]["Entrypoint"], json!(["dagster"]));
        assert_eq!(config["config"]["Cmd"], json!(["api", "grpc"]));
    }

    #[test]
    fn minimal_config_gets_the_missing_sections() {
        let env = [("A".to_owned(), "1".to_owned())];
        let bytes =
            extend_config(&json!({"config": {"Env": null}}), &change(&env)).expect("extend");
        let config: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:code"]));
        assert_eq!(config["config"]["Env"], json!(["A=1"]));
        let error = extend_config(&json!({"rootfs": []}), &change(&[])).expect_err("bad rootfs");
        assert!(error.contains("rootfs"), "{error}");
    }

    #[test]
    fn output_is_byte_for_byte_reproducible() {
        let first = extend_config(&base_config(), &change(&[])).expect("extend");
        let second = extend_config(&base_config(), &change(&[])).expect("extend");
        assert_eq!(first, second);
    }

    #[test]
    fn manifest_keeps_the_base_format() {
        let config = Descriptor {
            digest: "sha256:cfg".to_owned(),
            size: 10,
        };
        let layer = Descriptor {
            digest: "sha256:layer".to_owned(),
            size: 20,
        };
        let docker = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": 1, "digest": "sha256:old"},
            "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": 5, "digest": "sha256:base"}]
        });
        let manifest: Value = serde_json::from_slice(
            &extend_manifest(&docker, &config, std::slice::from_ref(&layer)).expect("docker"),
        )
        .expect("json");
        assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
        assert_eq!(
            manifest["config"],
            json!({"mediaType": DOCKER_CONFIG, "size": 10, "digest": "sha256:cfg"})
        );
        assert_eq!(manifest["layers"][1]["mediaType"], DOCKER_LAYER_GZIP);
        assert_eq!(manifest["layers"][1]["digest"], "sha256:layer");
        assert_eq!(manifest_media_type(&docker), DOCKER_MANIFEST);

        let oci = json!({
            "schemaVersion": 2,
            "config": {"mediaType": OCI_CONFIG, "size": 1, "digest": "sha256:old"},
            "layers": [],
            "annotations": {"org.example": "kept"}
        });
        let manifest: Value = serde_json::from_slice(
            &extend_manifest(&oci, &config, std::slice::from_ref(&layer)).expect("oci"),
        )
        .expect("json");
        assert_eq!(manifest["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(manifest["annotations"]["org.example"], "kept");
        assert_eq!(manifest_media_type(&oci), OCI_MANIFEST);
    }

    #[test]
    fn formats_epoch_seconds_as_rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_709_647_620), "2024-03-05T14:07:00Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
