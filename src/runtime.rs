//! A Tokio runtime owned by a sink.

/// A Tokio runtime of a sink's (or exporter's) own that may be dropped anywhere: the application's
/// `#[tokio::main]` included, where dropping a plain `Runtime` panics. Its tasks are stopped
/// without waiting; everything worth waiting for was awaited before.
#[derive(Debug)]
pub(crate) struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    pub(crate) fn new(runtime: tokio::runtime::Runtime) -> Self {
        Self(Some(runtime))
    }

    pub(crate) fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
