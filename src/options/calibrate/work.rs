//! The working state of one calibration: the candidate configuration, the keys changed so far,
//! and the corrections, with the two ways the calibrator itself changes a key (adjust it, or put
//! it back to the base) so that every change is recorded.

use super::correction::{Correction, Rule};
use crate::options::access::{same_value, storage_key};
use crate::options::catalog::{Catalog, CatalogEntry};
use crate::options::config::Config;
use crate::options::ini::OptionsDoc;
use crate::options::value::{Value, show_exact};

/// Working state of one calibration.
pub(super) struct Work<'c> {
    pub(super) cat: &'c Catalog,
    pub(super) base: &'c Config,
    pub(super) cand: Config,
    /// Catalog keys changed by the proposal or by the calibrator, in order.
    pub(super) touched: Vec<&'static str>,
    pub(super) corrections: Vec<Correction>,
}

impl<'c> Work<'c> {
    pub(super) fn val(&self, key: &str) -> Option<Value> {
        self.cat.get(key).map(|e| self.cand.get(e))
    }
    pub(super) fn int(&self, key: &str) -> Option<i64> {
        self.val(key).and_then(|v| v.as_i64())
    }
    pub(super) fn float(&self, key: &str) -> Option<f64> {
        self.val(key).and_then(|v| v.as_f64())
    }
    pub(super) fn flag(&self, key: &str) -> Option<bool> {
        self.val(key).and_then(|v| v.as_bool())
    }
    pub(super) fn text(&self, key: &str) -> Option<String> {
        self.val(key).map(|v| v.to_string())
    }
    pub(super) fn is_touched(&self, key: &str) -> bool {
        self.touched.contains(&key)
    }

    /// Set `key` to `value` as a calibrator decision, recording it.
    pub(super) fn adjust(&mut self, key: &str, value: Value, rule: Rule, reason: String) {
        let Some(entry) = self.cat.get(key) else {
            return;
        };
        let old = self.cand.get(entry);
        if same_value(&old, &value) {
            return;
        }
        self.cand.set(entry, &value);
        if !self.touched.contains(&entry.spec.key) {
            self.touched.push(entry.spec.key);
        }
        self.corrections.push(Correction {
            key: key.to_string(),
            from: Some(show_exact(&entry.spec.ty, &old)),
            to: Some(show_exact(&entry.spec.ty, &value)),
            rule,
            reason,
        });
    }

    /// Put `key` back to the base's setting.
    pub(super) fn revert(&mut self, key: &'static str, reason: String) {
        let Some(entry) = self.cat.get(key) else {
            return;
        };
        let from = self.cand.get(entry);
        copy_storage(&self.base.doc, &mut self.cand.doc, entry);
        let to = self.cand.get(entry);
        self.corrections.push(Correction {
            key: key.to_string(),
            from: Some(show_exact(&entry.spec.ty, &from)),
            to: Some(show_exact(&entry.spec.ty, &to)),
            rule: Rule::RocksdbRejected,
            reason,
        });
    }
}

/// Copy whatever stores `entry` from one document to another (or remove it when absent).
pub(super) fn copy_storage(from: &OptionsDoc, to: &mut OptionsDoc, entry: &CatalogEntry) {
    let section = entry.spec.scope.section();
    let key = storage_key(&entry.spec);
    match from.get(&section, key) {
        Some(v) => {
            let v = v.to_string();
            to.set(&section, key, &v)
        }
        None => {
            if let Some(s) = to.section_mut(&section) {
                s.remove(key);
            }
        }
    }
}
