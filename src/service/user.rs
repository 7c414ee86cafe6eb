//! The `user` file: `USER[:GROUP]`, each a name or a number, resolved at load time.

use super::Credentials;
use nix::unistd::{Gid, Group, Uid, User, getgrouplist};
use std::ffi::CString;

/// Resolves `USER[:GROUP]` against the passwd and group databases. A numeric user without a
/// passwd entry is accepted only with an explicit group (there is no primary group to take).
pub fn resolve(spec: &str) -> Result<Credentials, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(format!(
            "'{spec}' is not a user (expected USER or USER:GROUP, each a name or a number)"
        ));
    }
    let entry = if let Some(uid) = number(user) {
        User::from_uid(Uid::from_raw(uid))
    } else {
        User::from_name(user)
    }
    .map_err(|e| format!("cannot look up user '{user}': {e}"))?;
    let entry = match (entry, number(user)) {
        (Some(u), _) => Some(u),
        (None, Some(_)) => None,
        (None, None) => return Err(format!("no such user '{user}'")),
    };
    let gid = match group {
        Some(g) => match number(g) {
            Some(n) => Gid::from_raw(n),
            None => match Group::from_name(g) {
                Ok(Some(gr)) => gr.gid,
                Ok(None) => return Err(format!("no such group '{g}'")),
                Err(e) => return Err(format!("cannot look up group '{g}': {e}")),
            },
        },
        None => match &entry {
            Some(u) => u.gid,
            None => {
                return Err(format!(
                    "uid {user} has no passwd entry (expected {user}:GROUP to name its group)"
                ));
            }
        },
    };
    Ok(match entry {
        Some(u) => {
            let groups = supplementary(&u.name, gid)?;
            Credentials {
                uid: u.uid,
                gid,
                groups,
                name: u.name,
                home: Some(u.dir),
            }
        }
        None => Credentials {
            uid: Uid::from_raw(number(user).unwrap_or_default()),
            gid,
            groups: vec![gid],
            name: user.to_owned(),
            home: None,
        },
    })
}

/// The user's groups from the group database, starting with `gid` (as `initgroups` sets them).
fn supplementary(name: &str, gid: Gid) -> Result<Vec<Gid>, String> {
    let cname = CString::new(name).map_err(|_| format!("'{name}' contains a NUL byte"))?;
    let mut groups = getgrouplist(&cname, gid)
        .map_err(|e| format!("cannot list the groups of '{name}': {e}"))?;
    // getgrouplist puts `gid` in the list; keep it first and only once.
    groups.retain(|g| *g != gid);
    groups.insert(0, gid);
    Ok(groups)
}

fn number(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        // 4294967295 is (uid_t)-1, "leave unchanged" to the kernel, never an id: setuid
        // refuses it (EINVAL) only when the service starts.
        s.parse().ok().filter(|&n| n != u32::MAX)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_by_name_and_number() {
        let c = resolve("root").unwrap();
        assert_eq!(
            (c.uid.as_raw(), c.gid.as_raw(), c.name.as_str()),
            (0, 0, "root")
        );
        assert_eq!(c.groups.first(), Some(&Gid::from_raw(0)));
        assert!(c.home.is_some());
        let c = resolve("0:0").unwrap();
        assert_eq!((c.uid.as_raw(), c.name.as_str()), (0, "root"));
    }

    #[test]
    fn unknown_names_and_numbers() {
        assert_eq!(
            resolve("ghost-user-x").unwrap_err(),
            "no such user 'ghost-user-x'"
        );
        assert_eq!(
            resolve("root:ghost-group-x").unwrap_err(),
            "no such group 'ghost-group-x'"
        );
        assert_eq!(
            resolve("54321").unwrap_err(),
            "uid 54321 has no passwd entry (expected 54321:GROUP to name its group)"
        );
        let c = resolve("54321:54322").unwrap();
        assert_eq!((c.uid.as_raw(), c.gid.as_raw()), (54321, 54322));
        assert_eq!(c.groups, [Gid::from_raw(54322)]);
        assert!(resolve(":0").is_err());
        assert!(resolve("root:").is_err());
    }
}
