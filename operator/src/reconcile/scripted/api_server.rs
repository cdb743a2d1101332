//! The scripted API server: a mock service in place of the client's HTTP
//! connection (kube's `Client::new` takes any tower service) that expects requests (in order, or as a group in any order),
//! checks each one's body and gives the scripted answer.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type SendResponse = oneshot::Sender<Response<Body>>;

/// The client's end of the connection: each request goes to the script,
/// which answers it (see `kube::Client::new`).
#[derive(Clone)]
pub struct MockService {
    requests: mpsc::UnboundedSender<(Request<Body>, SendResponse)>,
}

impl tower::Service<Request<Body>> for MockService {
    type Response = Response<Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (answer, answered) = oneshot::channel();
        let sent = self.requests.send((request, answer));
        Box::pin(async move {
            sent.map_err(|_| "the script has ended")?;
            Ok(answered.await.map_err(|_| "the script gave no answer")?)
        })
    }
}

/// The script's end: the requests as they come.
pub struct Handle {
    requests: mpsc::UnboundedReceiver<(Request<Body>, SendResponse)>,
}

impl Handle {
    pub async fn next_request(&mut self) -> Option<(Request<Body>, SendResponse)> {
        self.requests.recv().await
    }
}

/// A connected pair.
pub fn pair() -> (MockService, Handle) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MockService { requests: tx }, Handle { requests: rx })
}

/// One request the script expects, and its answer.
pub struct Exchange {
    method: Method,
    path: String,
    /// Text the query string must contain (a label selector, the field manager).
    query: Option<&'static str>,
    /// Checks the request's JSON body (`Value::Null` when it has none).
    check: Box<dyn Fn(&Value) + Send>,
    status: StatusCode,
    answer: Value,
}

pub fn exchange(method: Method, path: impl Into<String>, status: StatusCode, answer: Value) -> Exchange {
    Exchange {
        method,
        path: path.into(),
        query: None,
        check: Box::new(|_| {}),
        status,
        answer,
    }
}

impl Exchange {
    pub fn query(mut self, text: &'static str) -> Self {
        self.query = Some(text);
        self
    }

    pub fn check(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.check = Box::new(check);
        self
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The API server's side of the mock connection.
pub struct ApiServer {
    pub handle: Handle,
    pub served: Vec<String>,
}

impl ApiServer {
    /// Answers the next request, which must be `expected`.
    pub async fn serve(&mut self, expected: Exchange) {
        self.serve_any_order(vec![expected]).await;
    }

    /// Answers the next `expected.len()` requests, which may come in any
    /// order (the reconcile sends independent requests at once).
    pub async fn serve_any_order(&mut self, mut expected: Vec<Exchange>) {
        while !expected.is_empty() {
            let waiting: Vec<String> = expected.iter().map(Exchange::describe).collect();
            let (request, send) = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("no request came; expected one of {waiting:?}"))
                .expect("the client is gone");
            let (parts, body) = request.into_parts();
            let query = parts.uri.query().unwrap_or_default().to_string();
            let got = format!("{} {}", parts.method, parts.uri.path());
            let Some(at) = expected.iter().position(|e| {
                e.method == parts.method
                    && e.path == parts.uri.path()
                    && e.query.is_none_or(|q| query.contains(q))
            }) else {
                panic!(
                    "unexpected request {got}?{query} after {:?}; expected one of {waiting:?}",
                    self.served
                )
            };
            let exchange = expected.remove(at);
            let bytes = body.collect_bytes().await.expect("request body");
            let json: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("a JSON body")
            };
            (exchange.check)(&json);
            self.served.push(got);
            // `Null`: answer with what was sent, as server-side apply does.
            let reply = if exchange.answer.is_null() {
                &json
            } else {
                &exchange.answer
            };
            answer(send, exchange.status, reply);
        }
    }
}

fn answer(send: SendResponse, status: StatusCode, body: &Value) {
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    // The client may have given up (a failed test); nothing to do then.
    let _ = send.send(response);
}

pub fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
           "message": format!("{what} not found")})
}

pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// An answer that is the request's own body (a server-side apply, an Event).
pub fn echo() -> Value {
    Value::Null
}

/// A server-side apply by the operator, answered with the object sent.
pub fn apply_echo(method: Method, path: impl Into<String>) -> Exchange {
    exchange(method, path, StatusCode::OK, echo()).query("fieldManager=videocounter-operator")
}
