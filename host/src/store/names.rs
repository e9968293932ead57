//! Names (task ids, agents, agent types) shared as `Arc<str>` by the events of a batch.

use std::collections::HashSet;
use std::sync::Arc;

/// Makes each distinct name once: the events of a batch share it instead of a copy each. The
/// last two names used are found without hashing (a batch's tasks mostly repeat the agent and
/// agent type of the task before).
#[derive(Default)]
pub(crate) struct Names {
    recent: [Option<Arc<str>>; 2],
    all: HashSet<Arc<str>>,
}

impl Names {
    /// The shared `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(name) = self.recent.iter().flatten().find(|r| ***r == *s) {
            return name.clone();
        }
        let name = match self.all.get(s) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = s.into();
                self.all.insert(name.clone());
                name
            }
        };
        self.recent.swap(0, 1);
        self.recent[0] = Some(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[test]
    fn names_are_made_once() {
        let mut names = super::Names::default();
        let (a, b, c) = (names.get("a"), names.get("b"), names.get("c"));
        assert_eq!((&*a, &*b, &*c), ("a", "b", "c"));
        for (s, made) in [("a", &a), ("c", &c), ("b", &b), ("c", &c), ("a", &a)] {
            assert!(Arc::ptr_eq(&names.get(s), made), "{s}");
        }
    }
}
