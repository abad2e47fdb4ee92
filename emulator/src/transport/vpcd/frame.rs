//! vpcd's wire frames: a 2-byte big-endian length and its bytes; one-byte control codes,
//! longer frames are C-APDUs answered by R-APDUs.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::ReaderOptions;
use super::card::{Reply, presented_atr};
use super::reader::{Slot, disconnect, lock};

/// Sets `TCP_QUICKACK`: Linux then ACKs at once instead of delaying; it clears the flag by
/// itself, so it is re-armed before every read.
fn quickack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: `stream` owns a valid, open socket descriptor for the duration of the call;
    // `one` is a live c_int and the length passed is exactly its size, so the kernel reads
    // only initialised memory we own. setsockopt has no other memory effects.
    #[allow(unsafe_code)] // proven by the SAFETY comment above
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads frames and answers them until the connection ends.
pub(super) fn exchange_frames(
    options: &ReaderOptions,
    mut stream: TcpStream,
    (mutex, condvar): &(Mutex<Slot>, Condvar),
) -> io::Result<()> {
    let mut header = [0u8; 2];
    let mut message = Vec::with_capacity(1024);
    let mut frame = Vec::with_capacity(8 * 1024);
    loop {
        quickack(&stream);
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_be_bytes(header));
        message.resize(len, 0);
        stream.read_exact(&mut message)?;
        quickack(&stream);

        let reply = {
            let mut slot = lock(mutex);
            slot.in_exchange = true;
            if !slot.attached {
                slot.attached = true;
                condvar.notify_all();
            }
            if matches!(message.as_slice(), [0x01] | [0x02]) && !slot.powered {
                slot.powered = true;
                condvar.notify_all();
            }
            let Some(card) = slot.card.as_mut() else {
                return Ok(()); // removed while we were reading
            };
            match message.as_slice() {
                [] => Reply::default(),
                [0x00] | [0x01] | [0x02] => {
                    if options.trace {
                        let what = ["power off", "power on", "reset"][usize::from(message[0])];
                        eprintln!("[{}] --- {what}", options.endpoint.port());
                    }
                    card.reset();
                    Reply::default()
                }
                [0x04] => Reply {
                    data: Some(presented_atr(&options.atr, &**card)),
                    ..Reply::default()
                },
                [code] => {
                    eprintln!(
                        "[{}] unknown vpcd control code {code:#04x} ignored",
                        options.endpoint.port()
                    );
                    Reply::default()
                }
                apdu => {
                    if options.trace {
                        eprintln!(
                            "[{}] >>> {}",
                            options.endpoint.port(),
                            hex::encode_upper(apdu)
                        );
                    }
                    let mut reply = card.respond(apdu);
                    if options.trace {
                        let answer = reply
                            .data
                            .as_ref()
                            .map_or_else(|| "(no answer)".to_owned(), hex::encode_upper);
                        eprintln!(
                            "[{}] <<< {answer}{}{}",
                            options.endpoint.port(),
                            if reply.delay.is_zero() {
                                String::new()
                            } else {
                                format!(" after {:?}", reply.delay)
                            },
                            if reply.leave { " (card leaves)" } else { "" }
                        );
                    }
                    if let Some(response) = reply.data.as_mut()
                        && response.len() > usize::from(u16::MAX)
                    {
                        eprintln!(
                            "[{}] response of {} bytes does not fit a vpcd frame (65 535 max); answering 6F 00",
                            options.endpoint.port(),
                            response.len()
                        );
                        *response = vec![0x6F, 0x00];
                    }
                    // No answer (or an empty one) means the card has left.
                    reply.data = reply.data.filter(|r| !r.is_empty());
                    reply.leave |= reply.data.is_none();
                    slot.answered += 1;
                    reply
                }
            }
        };
        // A card silent past the longest frame waiting time is mute: a real reader stops
        // waiting at the limit, so this one does too (see `give_up_on_mute_card`).
        let mute = crate::fault::is_mute(reply.delay);
        if !reply.delay.is_zero() {
            // A slow card: wait without holding the lock, so a removal or stop ends the wait.
            let wait = reply.delay.min(crate::fault::FRAME_WAIT_LIMIT);
            let slot = lock(mutex);
            let (slot, _) = condvar
                .wait_timeout_while(slot, wait, |s| s.card.is_some() && !s.stop)
                .unwrap_or_else(|p| p.into_inner());
            if slot.card.is_none() || slot.stop {
                return Ok(());
            }
        }
        if mute {
            return give_up_on_mute_card(options, &stream);
        }
        if let Some(data) = &reply.data {
            frame.clear();
            frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
            frame.extend_from_slice(data);
            stream.write_all(&frame)?;
        }

        let mut slot = lock(mutex);
        slot.in_exchange = false;
        condvar.notify_all(); // a swap may be waiting for the exchange to end
        let removed_by_option = options.remove_after.is_some_and(|n| slot.answered >= n);
        if reply.leave || removed_by_option {
            if options.trace {
                eprintln!(
                    "[{}] fault: card removed after {} APDUs",
                    options.endpoint.port(),
                    slot.answered
                );
            }
            slot.card = None;
            disconnect(&mut slot);
            return Ok(());
        }
    }
}

/// What a contactless reader does when the card stays mute past the frame waiting time: the
/// exchange fails for the application, and the reader drops the field and finds the card
/// again, which comes back reset. Behind vpcd nobody gives up on its own, so the reader side
/// does it, in the one way Debian's vpcd (3.3) turns into a failed transmit: a frame header
/// that announces an answer, then a TCP reset instead of the answer. vpcd's receive of the
/// answer then fails, the driver returns `IFD_COMMUNICATION_ERROR` and the application's
/// `SCardTransmit` fails with `SCARD_E_NOT_TRANSACTED` (a clean close, or a reset before
/// any header, is reported by that vpcd as a *successful* exchange of zero bytes). vpcd
/// ejects the card, so the application's next transmit on its handle gets
/// `SCARD_W_REMOVED_CARD`; the serve loop puts the same card back after one empty presence
/// poll, reset as after a field loss, and `SCardReconnect` or a new connection reads it.
fn give_up_on_mute_card(options: &ReaderOptions, stream: &TcpStream) -> io::Result<()> {
    if options.trace {
        eprintln!(
            "[{}] card mute past the frame waiting time ({:?}): the reader gives up",
            options.endpoint.port(),
            crate::fault::FRAME_WAIT_LIMIT
        );
    }
    let _ = (&*stream).write_all(&2u16.to_be_bytes());
    // Let vpcd take the header before the reset arrives (a reset can overtake unread data).
    std::thread::sleep(Duration::from_millis(5));
    let abort = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `stream` owns a valid, open socket descriptor for the duration of the call;
    // `abort` is a live `linger` and the length passed is exactly its size, so the kernel
    // reads only initialised memory we own. With a zero linger time the last close of the
    // socket (this stream and the slot's clone, both dropped by the caller) sends a reset.
    #[allow(unsafe_code)] // proven by the SAFETY comment above
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&abort as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    Ok(())
}
