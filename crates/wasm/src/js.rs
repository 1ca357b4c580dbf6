//! Small helpers for building and reading JS values.

use wasm_bindgen::JsValue;

pub fn set(target: &JsValue, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(key), value);
}

pub fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    if !target.is_object() {
        return None;
    }
    js_sys::Reflect::get(target, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

pub fn string(target: &JsValue, key: &str) -> Option<String> {
    get(target, key).and_then(|v| v.as_string())
}

pub fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let o: JsValue = js_sys::Object::new().into();
    for (k, v) in entries {
        set(&o, k, v);
    }
    o
}

pub fn opt_str(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}
