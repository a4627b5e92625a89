//! The grammar's cases, for full references ([`ImageRef`]) and for registries ([`Registry`]).

use super::*;

#[test]
fn validate_tag_accepts_spec_tags_and_rejects_the_rest() {
    for good in ["v1", "4f2a9c1-42", "_x", "A.b-c_d", &"a".repeat(128)] {
        assert_eq!(ImageRef::validate_tag(good), Ok(()), "{good}");
    }
    for bad in ["", ".v1", "-v1", "v1:2", "v/1", "ü", &"a".repeat(129)] {
        assert!(ImageRef::validate_tag(bad).is_err(), "{bad}");
    }
}

fn check(input: &str, registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) {
    let image = ImageRef::parse(input).unwrap();
    assert_eq!(
        (
            image.registry(),
            image.repository(),
            image.tag(),
            image.digest()
        ),
        (registry, repository, tag, digest),
        "{input}"
    );
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn parse_splits_registry_repository_tag_and_digest() {
    check(
        "127.0.0.1:5000/team/app:v1",
        "127.0.0.1:5000",
        "team/app",
        Some("v1"),
        None,
    );
    check(
        &format!("ghcr.io/a/b@{DIGEST}"),
        "ghcr.io",
        "a/b",
        None,
        Some(DIGEST),
    );
    check(
        "localhost:5000/app",
        "localhost:5000",
        "app",
        Some("latest"),
        None,
    );
}

#[test]
fn parse_normalises_docker_hub_names() {
    check(
        "alpine",
        "docker.io",
        "library/alpine",
        Some("latest"),
        None,
    );
    check("acme/app:1", "docker.io", "acme/app", Some("1"), None);
    assert_eq!(
        ImageRef::parse("alpine").unwrap().api_host(),
        "registry-1.docker.io"
    );
}

#[test]
fn parse_rejects_uppercase_with_the_reference_in_the_message() {
    let error = ImageRef::parse("127.0.0.1:5000/Team/App")
        .unwrap_err()
        .to_string();
    assert!(error.contains("127.0.0.1:5000/Team/App"), "{error}");
}

#[test]
fn parse_accepts_the_grammar_s_corners() {
    check(
        "index.docker.io/alpine",
        "docker.io",
        "library/alpine",
        Some("latest"),
        None,
    );
    check(
        "localhost/a__b.c-d---e/f_g:1.0-rc_1",
        "localhost",
        "a__b.c-d---e/f_g",
        Some("1.0-rc_1"),
        None,
    );
    check("[::1]:5000/app:v1", "[::1]:5000", "app", Some("v1"), None);
    check(
        &format!("Reg-1.Example.com/app:v1@{DIGEST}"),
        "Reg-1.Example.com",
        "app",
        Some("v1"),
        Some(DIGEST),
    );
    // An uppercase first component names a host, as in Docker's own parser.
    check("Registry/app", "Registry", "app", Some("latest"), None);
    let other = "sha512+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564";
    check(
        &format!("ghcr.io/a@{other}"),
        "ghcr.io",
        "a",
        None,
        Some(other),
    );
    let longest = format!("r.io/{}", "a".repeat(250));
    assert_eq!(ImageRef::parse(&longest).unwrap().repository().len(), 250);
}

#[test]
fn parse_rejects_what_the_grammar_rejects_and_says_why() {
    let short_hex = "sha256:0123456789abcdef";
    let upper_hex = DIGEST.to_uppercase().replacen("SHA256", "sha256", 1);
    let too_long = format!("r.io/{}", "a".repeat(251));
    let cases: [(&str, &str); 21] = [
        ("", "empty"),
        ("127.0.0.1:5000/Team/app", "\"Team\""),
        ("ghcr.io/acme/App:v1", "\"App\""),
        ("ghcr.io//app", "empty path component"),
        ("ghcr.io/app/", "empty path component"),
        ("ghcr.io/", "empty path component"),
        ("/app", "empty path component"),
        ("ghcr.io/app-", "\"app-\""),
        ("ghcr.io/app.", "\"app.\""),
        ("ghcr.io/a___b", "\"a___b\""),
        ("ghcr.io/_app", "\"_app\""),
        ("ghcr.io/app:", "tag"),
        ("ghcr.io/app:-v1", "tag"),
        ("ghcr.io/app:v1:v2", "\"app:v1\""),
        ("ghcr.io/app@sha256", "no algorithm"),
        (&format!("ghcr.io/app@{short_hex}"), "encoded"),
        (&format!("ghcr.io/app@{upper_hex}"), "encoded"),
        ("ghcr.io/app@SHA256:00", "algorithm"),
        ("-bad.io:5000/app", "registry"),
        ("reg.io:65536/app", "registry"),
        (&too_long, "at most 255"),
    ];
    for (input, expected) in cases {
        let error = match ImageRef::parse(input) {
            Ok(parsed) => panic!("{input:?} was accepted as {parsed:?}"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(expected), "{input:?}: {error}");
        assert!(error.contains(input), "{input:?}: {error}");
    }
    let bad_tag = format!("ghcr.io/app:{}", "t".repeat(129));
    assert!(ImageRef::parse(&bad_tag).is_err());
    assert!(ImageRef::parse("reg.io:50x0/app").is_err());
}

#[test]
fn problems_are_data() {
    let error = ImageRef::parse("ghcr.io/Acme/app").unwrap_err();
    assert_eq!(error.reference(), "ghcr.io/Acme/app");
    assert_eq!(
        error.problem(),
        &ImageRefProblem::Path(PathProblem::Uppercase {
            component: "Acme".to_owned()
        })
    );
    let error = ImageRef::parse("ghcr.io:99999/app").unwrap_err();
    assert!(matches!(
        error.problem(),
        ImageRefProblem::Host {
            problem: HostProblem::BadPort { .. },
            ..
        }
    ));
}

#[test]
fn display_round_trips() {
    let text = format!("127.0.0.1:5000/team/app:v1@{DIGEST}");
    assert_eq!(ImageRef::parse(&text).unwrap().to_string(), text);
    let by_digest = ImageRef::parse("ghcr.io/a/b:v1")
        .unwrap()
        .with_digest(DIGEST)
        .unwrap();
    assert_eq!(by_digest.manifest_reference(), DIGEST);
    assert!(by_digest.with_tag("../x").is_err());
    assert!(by_digest.with_digest("sha256:../../x").is_err());
}

fn check_registry(reference: &str, expected_ok: bool) {
    let result = Registry::new(reference);
    assert_eq!(result.is_ok(), expected_ok, "{reference}: {result:?}");
}

#[test]
fn registry_accepts_common_repository_references() {
    for reference in [
        "ghcr.io/org/img",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo",
        "registry.example.com/data/shared",
        "localhost:5000/app",
        "localhost/app",
        "127.0.0.1:5000/a/b",
        "[::1]:5000/app",
        "my_org/my__app",
        "docker.io/library/python",
        "python",
        "a-b--c.d_e",
        "Registry.Example.com/app",
    ] {
        check_registry(reference, true);
    }
}

#[test]
fn registry_rejects_tags_digests_and_malformed_references() {
    for reference in [
        "",
        "ghcr.io/org/img:latest",
        "img:1.0",
        "ghcr.io/org/img@sha256:abcd",
        "ghcr.io/Org/img",
        "ghcr.io//img",
        "ghcr.io/img/",
        "/img",
        "ghcr.io:99999/img",
        "ghcr.io:/img",
        "-bad.io/img",
        "ghcr.io/org/img-",
        "ghcr.io/org/a___b",
        "ghcr.io/org/a.-b",
        "ghcr io/img",
        "ghcr.io/o rg/img",
        "https://ghcr.io/img",
        "[::1/img",
    ] {
        check_registry(reference, false);
    }
}

#[test]
fn registry_errors_say_what_is_wrong_and_what_to_do() {
    let error = Registry::new("ghcr.io/org/img:latest").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the registry `ghcr.io/org/img:latest` includes a tag (`:latest`)"
    );
    assert!(error.help().contains("remove the `:tag`"), "{error:?}");
    let error = Registry::new("ghcr.io/Acme/App").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the registry `ghcr.io/Acme/App` is not a valid repository: path component `Acme` has an uppercase letter; repository paths are lowercase"
    );
    let error = Registry::new("[::1/img").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the registry host `[::1` has an unclosed `[`"
    );
}

#[test]
fn a_registry_and_an_image_agree_on_the_host() {
    for (text, host) in [
        ("ghcr.io/acme/app", "ghcr.io"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000"),
        ("acme/app", "docker.io"),
        ("Registry/app", "Registry"),
    ] {
        let registry = Registry::new(text).unwrap();
        assert_eq!(registry.host(), host);
        let image = ImageRef::parse(&format!("{text}:v1")).unwrap();
        assert_eq!(image.registry(), host, "{text}");
    }
}
