//! Token endpoint, introspection and userinfo response types.
