//! Build planning and tags, without building.

use super::*;

#[test]
fn derived_docker_tags_are_valid_tags_for_any_location_name() {
    for (name, prefix) in [
        ("alpha", "alpha-"),
        ("Sales + Ops é", "Sales-Ops-"),
        ("..", ""),
        ("-x-", "x-"),
        ("a.b_c", "a.b_c-"),
    ] {
        let tag = derived_docker_tag(name, 0xabc);
        assert!(tag.starts_with(prefix), "{name}: {tag}");
        assert!(ImageRef::validate_tag(&tag).is_ok(), "{name}: {tag}");
    }
    let long = derived_docker_tag(&"n".repeat(300), u128::MAX);
    assert!(long.len() <= 128, "{}", long.len());
    assert!(ImageRef::validate_tag(&long).is_ok());
}
