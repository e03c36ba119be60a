//! Objects decoded one at a time. A typed decoder fails a whole list (or loses a watch event) for one
//! object of the wrong shape: a field of the wrong type written through a CRD without a schema, a
//! proxy rewriting bodies, an API newer than the types. [`Lenient`] keeps such an object as
//! [`Unreadable`], with its name, so the rest of the resource is still read and the inventory can
//! say what it is missing.

use std::borrow::Cow;

use kube::core::ObjectMeta;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::Value;

/// An object as the API sent it: readable as `K`, or not.
#[derive(Debug, Clone)]
pub enum Lenient<K> {
    /// The object.
    Read(K),
    /// An object that does not decode as `K`.
    Unreadable(Box<Unreadable>),
}

/// An object that does not decode as its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Its metadata, as far as readable (name and namespace identify it in the index).
    pub meta: ObjectMeta,
    /// What the decoder said.
    pub error: String,
    /// The object as sent, for deciding whether it would have mattered.
    pub raw: Value,
}

impl<K> From<K> for Lenient<K> {
    fn from(k: K) -> Lenient<K> {
        Lenient::Read(k)
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Anything that is JSON at all gets this far; only text that is not JSON fails the list or
        // the watch line it came in.
        let raw = Value::deserialize(deserializer)?;
        match K::deserialize(&raw) {
            Ok(k) => Ok(Lenient::Read(k)),
            Err(e) => {
                let meta = raw
                    .get("metadata")
                    .and_then(|m| ObjectMeta::deserialize(m).ok())
                    .unwrap_or_else(|| meta_fallback(&raw));
                Ok(Lenient::Unreadable(Box::new(Unreadable { meta, error: e.to_string(), raw })))
            }
        }
    }
}

/// The identifying strings of metadata that does not decode as a whole (a label that is a number).
fn meta_fallback(raw: &Value) -> ObjectMeta {
    let field = |name: &str| raw.get("metadata")?.get(name)?.as_str().map(str::to_owned);
    ObjectMeta {
        name: field("name"),
        namespace: field("namespace"),
        resource_version: field("resourceVersion"),
        uid: field("uid"),
        ..ObjectMeta::default()
    }
}

impl<K: kube::Resource> kube::Resource for Lenient<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
        K::url_path(dt, namespace)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Read(k) => k.meta(),
            Lenient::Unreadable(u) => &u.meta,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Read(k) => k.meta_mut(),
            Lenient::Unreadable(u) => &mut u.meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use kube::Resource as _;
    use kube::api::DynamicObject;
    use kube::core::ObjectList;
    use serde_json::json;

    #[test]
    fn one_bad_object_does_not_fail_its_list() {
        let list = json!({
            "metadata": {"resourceVersion": "7"},
            "items": [
                {"metadata": {"name": "good", "namespace": "web"}, "spec": {"type": "LoadBalancer"}},
                {"metadata": {"name": "bad", "namespace": "web", "resourceVersion": "5"}, "spec": {"ports": "http"}},
                {"metadata": {"name": "odd", "labels": {"x": 1}}, "spec": 5},
            ]
        });
        let typed = serde_json::from_value::<ObjectList<Service>>(list.clone());
        assert!(typed.is_err(), "the plain type fails the whole list");

        let list: ObjectList<Lenient<Service>> = serde_json::from_value(list).unwrap();
        let [good, bad, odd] = list.items.as_slice() else { panic!("{:?}", list.items) };
        assert!(matches!(good, Lenient::Read(s) if s.meta().name.as_deref() == Some("good")));
        let Lenient::Unreadable(u) = bad else { panic!("{bad:?}") };
        assert_eq!((u.meta.name.as_deref(), u.meta.namespace.as_deref()), (Some("bad"), Some("web")));
        assert_eq!(bad.meta().resource_version.as_deref(), Some("5"), "the watcher needs it");
        assert!(u.error.contains("invalid type"), "{}", u.error);
        assert_eq!(u.raw["spec"]["ports"], "http");
        // Metadata that does not decode: the name still does.
        assert_eq!(odd.meta().name.as_deref(), Some("odd"));
    }

    #[test]
    fn dynamic_objects_and_the_resource_description() {
        let ar = crate::inventory::kubernetes::IpAddressPools::api_resource();
        assert_eq!(Lenient::<DynamicObject>::plural(&ar), "ipaddresspools");
        assert_eq!(
            Lenient::<DynamicObject>::url_path(&ar, Some("metallb-system")),
            "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools"
        );
        assert_eq!(Lenient::<Service>::url_path(&(), None), "/api/v1/services");
        let pool: Lenient<DynamicObject> =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"addresses": 5}})).unwrap();
        assert!(matches!(pool, Lenient::Read(_)), "a DynamicObject takes any spec");
        assert!(serde_json::from_str::<Lenient<Service>>("<html>").is_err(), "not JSON at all");
    }
}
