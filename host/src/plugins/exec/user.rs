//! Run-as users of exec grants: a grant's `user = "NAME"` is resolved to its uid and primary
//! gid through the system's user database (`getpwnam_r`, so NSS sources count) when the
//! manifest is loaded; an unknown user makes the manifest invalid instead of a command
//! running as the wrong user later.

use std::ffi::{CStr, CString};

/// The uid and primary gid of `name`, or why there are none.
pub fn lookup(name: &str) -> Result<(u32, u32), String> {
    let c_name =
        CString::new(name).map_err(|_| format!("user name `{name}` contains a NUL byte"))?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers and zero ids), filled in below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives the strings `pwd` points
        // into, and only the ids (copied) are read after it.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "cannot look up user `{name}`: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() {
            return Err(format!("run-as user `{name}` does not exist on this host"));
        }
        debug_assert!(!pwd.pw_name.is_null());
        // SAFETY: on success pw_name points into `buf`, NUL-terminated.
        let found = unsafe { CStr::from_ptr(pwd.pw_name) };
        debug_assert_eq!(found.to_bytes(), name.as_bytes());
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_unknown_users() {
        assert_eq!(lookup("root").unwrap(), (0, 0));
        let err = lookup("kiln-no-such-user-7f3a").unwrap_err();
        assert_eq!(
            err,
            "run-as user `kiln-no-such-user-7f3a` does not exist on this host"
        );
        assert!(lookup("a\0b").is_err());
    }
}
