//! What a hostile but fair client (or an outage) can do to a host, one module per finding: the
//! host keeps serving, answers with the documented error, and loses nothing.

mod client_input;
mod crashes;
mod deep_json;
mod descriptors;
mod memory;
mod outage;
mod sizes;
mod streams;
