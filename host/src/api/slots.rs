//! Slots for event streams: at most so many open on the host and so many per client address,
//! so idle or slow watchers cannot take the host's capacity from everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::error::{ApiError, ErrorCode};

/// The event streams open now.
#[derive(Debug)]
pub struct StreamSlots {
    max: usize,
    max_per_client: usize,
    /// Open streams: in all, and per client (`None`: no address known).
    open: Mutex<(usize, HashMap<Option<IpAddr>, usize>)>,
}

/// One open stream; its slot is given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    client: Option<IpAddr>,
}

impl StreamSlots {
    pub fn new(max: usize, max_per_client: usize) -> StreamSlots {
        StreamSlots { max, max_per_client, open: Mutex::new((0, HashMap::new())) }
    }

    /// A slot for a stream of `client`: 429 past the client's limit, 503 past the host's.
    pub fn take(self: &Arc<Self>, client: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let of_client = open.1.get(&client).copied().unwrap_or(0);
        if of_client >= self.max_per_client {
            return Err(ApiError::new(
                ErrorCode::TooManyStreams,
                format!(
                    "this client has {of_client} event streams open, max_event_streams_per_client: close one first"
                ),
            ));
        }
        if open.0 >= self.max {
            return Err(ApiError::new(
                ErrorCode::StreamsFull,
                format!("the host serves {} event streams, max_event_streams: retry later", open.0),
            ));
        }
        open.0 += 1;
        *open.1.entry(client).or_default() += 1;
        Ok(StreamSlot { slots: self.clone(), client })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn slots_are_bounded_per_client_and_in_all() {
        let slots = Arc::new(StreamSlots::new(3, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(Some(a)).unwrap();
        let _second = slots.take(Some(a)).unwrap();
        assert_eq!(slots.take(Some(a)).unwrap_err().status(), StatusCode::TOO_MANY_REQUESTS);
        let _third = slots.take(Some(b)).unwrap();
        assert_eq!(slots.take(Some(b)).unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        assert!(slots.take(Some(b)).is_ok(), "a slot given back is free again");
    }
}
