//! The login and consent challenge protocol of Hydra v2 (admin API request and response types).
