pub(crate) mod otlp_receiver;
