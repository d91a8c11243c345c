# What `cpack -G DEB` (scripts/package.sh) puts in troupe_<version>_amd64.deb:
# the binary, a systemd unit template, an example node configuration in
# /etc/troupe (a conffile), the example configurations and the docs.
include(GNUInstallDirs)
set(pkg ${PROJECT_SOURCE_DIR}/scripts/packaging)
install(TARGETS troupe RUNTIME DESTINATION bin)
install(FILES ${pkg}/troupe@.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/examples/cluster/node.toml
        DESTINATION /etc/troupe)
install(FILES ${PROJECT_SOURCE_DIR}/config/troupe.example.toml
              ${PROJECT_SOURCE_DIR}/config/nats-server.example.conf
              ${PROJECT_SOURCE_DIR}/examples/cluster/node.toml
        DESTINATION share/doc/troupe/examples)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION share/doc/troupe
        FILES_MATCHING PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/troupe)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME troupe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "troupe maintainers <troupe@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "distributed job runtime on the actor model (NATS JetStream, PostgreSQL)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The build keeps its debug info (-g) for backtraces; the package does not.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The example node configuration's stage uses jq; nats-server and
# PostgreSQL usually run elsewhere, so they are suggestions.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, jq")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nats-server, postgresql-15")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${pkg}/postinst ${pkg}/prerm ${pkg}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
