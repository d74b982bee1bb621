//! The sync protocol between the runtime process and the container's init: a
//! SOCK_SEQPACKET pair, one message per step, so each side knows exactly where the other is.

use crate::error::{Result, RuntimeError, SysContext};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// runtime -> init: the user namespace's id maps are written.
    Mapped = 1,
    /// runtime -> init: the init is in its cgroup (a cgroup namespace may be made now).
    CgroupReady = 2,
    /// init -> runtime: mounts are done; run prestart/createRuntime hooks (pivot follows).
    HookPoint = 3,
    /// runtime -> init: those hooks ran; payload: the state JSON for createContainer hooks.
    HooksDone = 4,
    /// init -> runtime: everything is set up; the init now waits for `start`.
    Ready = 5,
    /// init -> runtime: setup failed; payload: the message.
    Error = 6,
    /// init -> runtime: payload: the pid of the real init (after a second fork).
    InitPid = 7,
    /// init -> runtime: the terminal's master side rides along as SCM_RIGHTS.
    Console = 8,
    /// runtime -> init: after a second fork, the first child is reaped, so the real init
    /// is the runtime's child now (its death signal can be armed).
    Adopted = 9,
}

impl Tag {
    fn from_u8(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Mapped,
            2 => Tag::CgroupReady,
            3 => Tag::HookPoint,
            4 => Tag::HooksDone,
            5 => Tag::Ready,
            6 => Tag::Error,
            7 => Tag::InitPid,
            8 => Tag::Console,
            9 => Tag::Adopted,
            _ => return None,
        })
    }
}

pub struct Channel {
    fd: OwnedFd,
}

pub struct Message {
    pub tag: Tag,
    pub payload: Vec<u8>,
    pub fd: Option<OwnedFd>,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .sys(|| "socketpair".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, tag: Tag, payload: &[u8]) -> Result<()> {
        self.send_with_fd(tag, payload, None)
    }

    pub fn send_with_fd(&self, tag: Tag, payload: &[u8], fd: Option<RawFd>) -> Result<()> {
        let head = [tag as u8];
        let iov = [IoSlice::new(&head), IoSlice::new(payload)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .sys(|| format!("sending {tag:?} to the other side of container setup"))?;
        Ok(())
    }

    /// The next message; `None` when the other side closed its end (it exited).
    pub fn recv(&self) -> Result<Option<Message>> {
        // Peek at the message's size first: buffers stay as small as the messages (the
        // runtime's peak memory is one of the things we measure).
        let size = loop {
            match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut [0u8; 1],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.sys(|| "receiving from container setup".into())?,
            }
        };
        let mut buf = vec![0u8; size.max(1)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.sys(|| "receiving from container setup".into())?,
                }
            };
            let mut fd = None;
            for c in msg.cmsgs().map_err(|e| RuntimeError::Sys {
                what: "reading control message".into(),
                source: e,
            })? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        // SAFETY: SCM_RIGHTS just installed this descriptor in our table;
                        // nothing else owns it.
                        fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
                    }
                }
            }
            (msg.bytes, fd)
        };
        if n == 0 {
            return Ok(None);
        }
        let tag = Tag::from_u8(buf[0])
            .ok_or_else(|| RuntimeError::Init(format!("unknown sync message {}", buf[0])))?;
        buf.truncate(n);
        buf.remove(0);
        Ok(Some(Message {
            tag,
            payload: buf,
            fd,
        }))
    }

    /// Sends, and if the other side is gone, returns the error it left behind (a dead
    /// init's own message explains more than EPIPE).
    pub fn send_or_peer_error(&self, tag: Tag, payload: &[u8]) -> Result<()> {
        let Err(e) = self.send(tag, payload) else {
            return Ok(());
        };
        while let Ok(Some(m)) = self.recv() {
            if m.tag == Tag::Error {
                return Err(RuntimeError::Init(
                    String::from_utf8_lossy(&m.payload).into_owned(),
                ));
            }
        }
        Err(e)
    }

    /// Waits for one specific message; an Error message or a closed channel becomes an error.
    pub fn expect(&self, tag: Tag) -> Result<Message> {
        match self.recv()? {
            Some(m) if m.tag == tag => Ok(m),
            Some(m) if m.tag == Tag::Error => Err(RuntimeError::Init(
                String::from_utf8_lossy(&m.payload).into_owned(),
            )),
            Some(m) => Err(RuntimeError::Init(format!(
                "expected {tag:?}, got {:?}",
                m.tag
            ))),
            None => Err(RuntimeError::Init(format!(
                "the runtime went away while the container waited for {tag:?}"
            ))),
        }
    }
}
