//! The real OCI registry of the end-to-end tests: the registry crate's own harness
//! (`dagster_deploy_registry::test_support`, cargo feature `test-support`), so that the crate's
//! tests, its embedders' and these run against the same thing: `/usr/bin/docker-registry
//! serve` on a free `127.0.0.1` port with its storage in a temp dir, plain HTTP, anonymous or
//! with one htpasswd login, killed on drop.

pub use dagster_deploy_registry::test_support::{
    DOCKER_REGISTRY_BINARY, RegistryServer as Registry,
};

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::path::Path;

    use super::*;

    #[test]
    fn registry_answers_v2_and_stops_on_drop() {
        let registry = Registry::start();
        let host = registry.host();
        assert!(host.starts_with("127.0.0.1:"));
        assert!(TcpStream::connect(&host).is_ok(), "{host} should listen");
        let directory = registry.directory();
        assert!(directory.join("config.yml").is_file());
        drop(registry);
        assert!(
            TcpStream::connect(&host).is_err(),
            "registry at {host} should be stopped"
        );
        assert!(
            !directory.exists(),
            "{} should be deleted",
            directory.display()
        );
    }

    #[test]
    fn missing_binary_says_how_to_install_it() {
        let error = Registry::try_start(Path::new("/nonexistent/docker-registry"), None)
            .expect_err("no such binary");
        assert!(
            error
                .to_string()
                .contains("apt-get install -y docker-registry"),
            "{error}"
        );
    }
}
