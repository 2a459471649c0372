//! napi-build sets the linker arguments a Node-API cdylib needs on each platform (on Linux: none, the `napi_*`
//! symbols stay undefined and resolve against the `node` executable when the addon is loaded).
fn main() {
    napi_build::setup();
}
