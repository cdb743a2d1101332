//! The headless Service that gives each worker pod a stable DNS name, and the
//! Service in front of the workers' HTTP API.

use super::{child_meta, names, selector_labels};
use crate::crd::ServiceSpec as ApiServiceSpec;
use crate::reconcile::pod_layout::HTTP_PORT;
use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn http_port(port: i32) -> ServicePort {
    ServicePort {
        name: Some("http".into()),
        port,
        target_port: Some(IntOrString::String("http".into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// Headless: `<pod>.<name>-headless` resolves even before a pod is Ready, so
/// workers can reach each other while they restore state.
pub fn headless_service(counter: &ValidCounter) -> Service {
    Service {
        metadata: child_meta(counter, names::headless_service(&counter.name)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&counter.name)),
            ports: Some(vec![http_port(HTTP_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The API Service: only Ready pods receive requests.
pub fn api_service(counter: &ValidCounter, service: &ApiServiceSpec) -> Service {
    Service {
        metadata: child_meta(counter, names::api_service(&counter.name)),
        spec: Some(ServiceSpec {
            type_: Some(service.type_.as_str().into()),
            selector: Some(selector_labels(&counter.name)),
            ports: Some(vec![http_port(service.port)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::fixtures::{example, valid};

    #[test]
    fn headless_service_publishes_unready_pods() {
        let svc = headless_service(&valid(&example()));
        assert_eq!(svc.metadata.name.as_deref(), Some("likes-headless"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.ports.unwrap()[0].port, 8080);
    }

    #[test]
    fn api_service_uses_the_spec_port_and_type() {
        let mut vc = example();
        vc.spec.service.port = 80;
        vc.spec.service.type_ = crate::crd::ServiceType::NodePort;
        let counter = valid(&vc);
        let spec = api_service(&counter, counter.service.as_ref().unwrap())
            .spec
            .unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert_eq!(spec.selector.unwrap(), selector_labels("likes"));
    }
}
