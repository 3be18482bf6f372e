//! One connection's life: messages in order, replies (or none, for
//! no-reply commands), errors with the spec's errnos, the early answer for
//! region writes.

use super::*;

impl Session {
    /// Handle the commands the reader hands over, until the connection
    /// ends.
    pub(super) fn run(&mut self, rx: &std::sync::mpsc::Receiver<Incoming>) -> End {
        loop {
            match rx.recv() {
                Ok(Incoming::Command(hdr, body, fds)) => {
                    if let Some(end) = self.message(hdr, body, fds) {
                        return end;
                    }
                }
                Ok(Incoming::Stray) => self.device().count_protocol_error(self.function),
                Ok(Incoming::End(End::Broken(why))) => {
                    self.device().count_protocol_error(self.function);
                    return End::Client(why);
                }
                Ok(Incoming::End(end)) => return end,
                Err(_) => return End::Client("the connection's reader ended".into()),
            }
        }
    }

    /// Handle one command read whole. `Some` ends the session.
    pub(super) fn message(&mut self, hdr: Header, body: Vec<u8>, fds: Vec<File>) -> Option<End> {
        let end = self.answer(hdr, body, fds);
        if !hdr.no_reply() && !std::mem::take(&mut self.paid_early) {
            // Answered (or never will be: the session ends).
            self.remote.paid();
        }
        if end.is_none() && !self.remote.client_waiting() {
            // The client may answer the device now: what its waiting put
            // off goes on (the engine would, but a virtual clock's engine
            // runs only when the caller drives it).
            let f = usize::from(self.function);
            let mut d = self.device();
            if d.has_put_off(f) {
                d.finish_put_off(f);
            }
        }
        end
    }

    /// Execute one command and send its reply (or error reply).
    pub(super) fn answer(&mut self, hdr: Header, body: Vec<u8>, fds: Vec<File>) -> Option<End> {
        let name = cmd::name(hdr.command);
        let len = body.len();
        let (min, _) = wire::payload_limits(hdr.command, MAX_DATA_XFER);
        let outcome = if hdr.flags & !flags::ALL != 0 {
            Err(refuse(libc::EINVAL, format!("undefined header flags {:#x}", hdr.flags)))
        } else if hdr.error != 0 {
            Err(refuse(libc::EINVAL, "the error field of a command must be zero"))
        } else if len < min {
            Err(refuse(
                libc::EINVAL,
                format!("{name} payload of {len} bytes, at least {min} needed"),
            ))
        } else if !self.negotiated && hdr.command != cmd::VERSION {
            Err(refuse(libc::EINVAL, "VERSION must be negotiated first"))
        } else {
            let (shared, function) = (self.shared.clone(), self.function);
            // Nothing a client sends may panic the server; if a bug does,
            // the function is reset and only this client loses its
            // connection.
            match catch_unwind(AssertUnwindSafe(|| self.dispatch(&hdr, &body, fds))) {
                Ok(r) => r,
                Err(payload) => {
                    // A bug: the function stops in its error state (a reset
                    // recovers it), the client hears EIO, others carry on.
                    let mut d = shared.lock();
                    d.blame_function(function);
                    d.contain_panic(payload.as_ref());
                    Err(refuse(libc::EIO, format!("{name}: internal error; reset the function")))
                }
            }
        };
        match outcome {
            Ok(reply) if !hdr.no_reply() && !reply.sent => {
                if let Err(r) = self.send_reply(&hdr, &reply) {
                    return Some(End::Client(format!("sending the {name} reply: {}", r.why)));
                }
            }
            Ok(_) => {}
            Err(r) => {
                tracing::debug!(
                    function = self.function,
                    "{name} refused ({}): {}",
                    errno_name(r.errno),
                    r.why
                );
                self.device().count_protocol_error(self.function);
                if !hdr.no_reply() {
                    self.send_error(&hdr, r.errno, &r.why);
                }
                if hdr.command == cmd::VERSION && r.errno == libc::ENOTSUP {
                    // A major version nicsim does not speak: the
                    // specification has the connection closed.
                    return Some(End::Client("incompatible protocol version".into()));
                }
            }
        }
        None
    }

    pub(super) fn send_reply(&mut self, hdr: &Header, reply: &Reply) -> Result<(), Refusal> {
        let fds: Vec<RawFd> = reply.fd.into_iter().collect();
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(&hdr.reply(reply.payload.len()), &reply.payload, &fds)
            .map_err(|e| refuse(libc::EIO, e.to_string()))
    }

    pub(super) fn send_error(&mut self, hdr: &Header, errno: i32, why: &str) {
        tracing::debug!(function = self.function, "error reply {}: {why}", errno_name(errno));
        let _ = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(&hdr.error_reply(errno), &[], &[]);
    }
}
