//! Node-API addon (stub).
