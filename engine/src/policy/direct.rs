//! Direct evaluation of the common subset of Cedar.
//!
//! Cedar's authorizer runs every request through its partial evaluator,
//! which rebuilds each policy's condition as an expression, allocates
//! residuals and collects hash sets; that was two thirds of a decision's
//! time. Most policies use only a small part of the language: scopes,
//! `when`/`unless` with `&&`, `||`, `!`, `if`, `==`, `!=`, integer
//! comparisons, `in`, `has` and attribute access on entities, records and
//! the context. Those are compiled here, once per bundle, from Cedar's own
//! JSON form of each policy, and evaluated directly against a copy of the
//! same entities ([`DirectEntities`]).
//!
//! The direct path answers only when it can answer exactly as Cedar would.
//! A policy using anything else is not compiled, and a request whose slice
//! holds one goes to Cedar. Evaluation that meets anything Cedar would
//! report as an error (a missing attribute or entity, a type mismatch) or
//! that this subset does not cover gives up, and the request goes to Cedar,
//! which then produces the decision and its error text. Conditions are
//! evaluated left to right with Cedar's short-circuiting, so the direct path
//! reaches exactly the subexpressions Cedar reaches. The tests compare the
//! two on generated policies, entities and requests.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cedar_policy::{
    Effect, Entities, Entity, EntityTypeName, EntityUid, EvalResult, Policy, Record,
    ResourceConstraint,
};
use serde_json::{Map, Value};

use crate::policy::bundle::{FastMap, Hierarchy};
use crate::policy::decision::{PlainValue, plain_value};

type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The entities as the direct path reads them, built once with each
/// `PreparedEntities`: Cedar's `Entities` hashes every lookup with SipHash
/// and clones every attribute it hands out, which was half of a direct
/// decision's time. The same entities, attributes and ancestors.
///
/// A mission's entities are its own entity on a [`DirectStem`] that every
/// mission of the same agent and tools shares, so the stem is held, not
/// copied.
#[derive(Clone, Debug, Default)]
pub(crate) struct DirectEntities {
    stem: Option<Arc<FastMap<EntityUid, DirectEntity>>>,
    map: FastMap<EntityUid, DirectEntity>,
}

/// Entities closed among themselves, for [`DirectEntities::on_stem`].
#[derive(Debug)]
pub(crate) struct DirectStem {
    map: Arc<FastMap<EntityUid, DirectEntity>>,
    /// Every entity that is an ancestor of one of the stem's.
    ancestors: FastSet<EntityUid>,
}

#[derive(Clone, Debug, PartialEq)]
struct DirectEntity {
    /// `None` if an attribute is not a plain value (never for entities
    /// built from JSON); reading any then gives up.
    attrs: Option<BTreeMap<String, EvalResult>>,
    ancestors: FastSet<EntityUid>,
}

/// An entity's attributes as the direct path reads them; `None` if one is
/// not a plain value.
fn plain_attrs(e: &Entity) -> Option<BTreeMap<String, EvalResult>> {
    e.attrs()
        .map(|(k, v)| Some((k.to_owned(), v.ok()?)))
        .collect()
}

impl DirectEntities {
    /// The entities of `parts`, each with its parents, closed over the
    /// parent relation as Cedar closes it, without building Cedar's
    /// `Entities`. `None` wherever Cedar's own build would not simply hold
    /// the same set: a uid given twice (Cedar merges identical copies and
    /// refuses others) or a cycle (Cedar refuses it). The caller then
    /// builds with Cedar, which decides or reports the error as before.
    pub(crate) fn closed<'a>(
        parts: impl IntoIterator<Item = (&'a Entity, &'a [EntityUid])>,
    ) -> Option<DirectEntities> {
        let mut parents: FastMap<EntityUid, &[EntityUid]> = FastMap::default();
        let mut attrs = Vec::new();
        for (e, ps) in parts {
            let uid = e.uid();
            if parents.insert(uid.clone(), ps).is_some() {
                return None;
            }
            attrs.push((uid, plain_attrs(e)));
        }
        let mut map = FastMap::default();
        for (uid, attrs) in attrs {
            let mut ancestors = FastSet::default();
            let mut todo: Vec<&EntityUid> = parents[&uid].iter().collect();
            while let Some(p) = todo.pop() {
                if ancestors.insert(p.clone())
                    && let Some(grand) = parents.get(p)
                {
                    todo.extend(grand.iter());
                }
            }
            if ancestors.contains(&uid) {
                return None;
            }
            map.insert(uid, DirectEntity { attrs, ancestors });
        }
        Some(DirectEntities { stem: None, map })
    }

    /// The entities of `parts` as a stem for others to be added to, if
    /// [`DirectEntities::closed`] would take them.
    pub(crate) fn stem<'a>(
        parts: impl IntoIterator<Item = (&'a Entity, &'a [EntityUid])>,
    ) -> Option<DirectStem> {
        let closed = DirectEntities::closed(parts)?;
        let ancestors = closed
            .map
            .values()
            .flat_map(|d| d.ancestors.iter().cloned())
            .collect();
        Some(DirectStem {
            map: Arc::new(closed.map),
            ancestors,
        })
    }

    /// `stem` and `entity` with its `parents`, closed as
    /// [`DirectEntities::closed`] closes them all together. `None` where
    /// adding it would change the stem (the entity is in it already, or is
    /// an ancestor of an entity in it, which could make a cycle): the
    /// caller closes them all together instead.
    pub(crate) fn on_stem(
        stem: &DirectStem,
        entity: &Entity,
        parents: &[EntityUid],
    ) -> Option<DirectEntities> {
        let uid = entity.uid();
        if stem.map.contains_key(&uid) || stem.ancestors.contains(&uid) || parents.contains(&uid) {
            return None;
        }
        let mut ancestors = FastSet::default();
        for p in parents {
            ancestors.insert(p.clone());
            if let Some(d) = stem.map.get(p) {
                ancestors.extend(d.ancestors.iter().cloned());
            }
        }
        let own = DirectEntity {
            attrs: plain_attrs(entity),
            ancestors,
        };
        let mut map = FastMap::default();
        map.insert(uid, own);
        Some(DirectEntities {
            stem: Some(Arc::clone(&stem.map)),
            map,
        })
    }

    fn get(&self, e: &EntityUid) -> Option<&DirectEntity> {
        self.map
            .get(e)
            .or_else(|| self.stem.as_ref().and_then(|s| s.get(e)))
    }

    fn len(&self) -> usize {
        self.map.len() + self.stem.as_ref().map_or(0, |s| s.len())
    }

    fn iter(&self) -> impl Iterator<Item = (&EntityUid, &DirectEntity)> {
        self.map
            .iter()
            .chain(self.stem.iter().flat_map(|s| s.iter()))
    }

    pub(crate) fn of(entities: &Entities) -> DirectEntities {
        let map = entities
            .iter()
            .map(|e| {
                let uid = e.uid();
                let attrs = plain_attrs(e);
                let ancestors = entities
                    .ancestors(&uid)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                (uid, DirectEntity { attrs, ancestors })
            })
            .collect();
        DirectEntities { stem: None, map }
    }

    /// Cedar's `e in target`: equal, or `target` is an ancestor of an
    /// existing `e`.
    fn within(&self, e: &EntityUid, target: &EntityUid) -> bool {
        e == target || self.get(e).is_some_and(|d| d.ancestors.contains(target))
    }

    fn attrs(&self, e: &EntityUid) -> Eval<&BTreeMap<String, EvalResult>> {
        self.get(e).and_then(|d| d.attrs.as_ref()).ok_or(GiveUp)
    }
}

/// A static policy of the direct subset.
#[derive(Debug)]
pub(crate) struct DirectPolicy {
    id: String,
    forbid: bool,
    resource: ResourceScope,
    /// `when` bodies as they are, `unless` bodies negated, in source order.
    conditions: Vec<Expr>,
}

#[derive(Debug)]
enum ResourceScope {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(EntityTypeName),
    IsIn(EntityTypeName, EntityUid),
}

#[derive(Debug)]
enum Var {
    Principal,
    Action,
    Resource,
    Context,
}

#[derive(Debug)]
enum Compare {
    Less,
    LessEq,
    Greater,
    GreaterEq,
}

#[derive(Debug)]
enum Expr {
    Long(i64),
    Bool(bool),
    Str(String),
    Entity(EntityUid),
    Var(Var),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Eq {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    Compare(Compare, Box<Expr>, Box<Expr>),
    /// `left in right`, where `right` is an entity literal or a set
    /// literal of entity literals.
    InLiterals(Box<Expr>, Vec<EntityUid>),
    /// `left in right`, where `right` must evaluate to an entity.
    InEntity(Box<Expr>, Box<Expr>),
    Attr(Box<Expr>, String),
    Has(Box<Expr>, String),
}

/// A value during direct evaluation. Sets and extension values are not in
/// the subset.
#[derive(Debug)]
enum Val<'a> {
    Long(i64),
    Bool(bool),
    Str(Cow<'a, str>),
    Entity(Cow<'a, EntityUid>),
    Json(&'a Map<String, Value>),
    Record(&'a Record),
}

/// The request as the direct path reads it.
pub(crate) struct DirectRequest<'a> {
    pub principal: &'a EntityUid,
    pub action: &'a EntityUid,
    pub resource: &'a EntityUid,
    /// A context that [`is_plain`] accepted.
    pub context: &'a Map<String, Value>,
}

/// The same entities with the same attributes and ancestors, however
/// they are held.
impl PartialEq for DirectEntities {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(uid, d)| other.get(uid) == Some(d))
    }
}

/// Cedar's response for a request, when every policy of its slice could be
/// evaluated directly: the decision and its determining policies.
impl Hierarchy for DirectEntities {
    fn ancestors_of(&self, e: &EntityUid) -> Option<impl Iterator<Item = &EntityUid>> {
        self.get(e).map(|d| d.ancestors.iter())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DirectResponse {
    pub allow: bool,
    pub determining: Vec<String>,
}

/// Evaluation gave up: Cedar must decide.
struct GiveUp;

type Eval<T> = Result<T, GiveUp>;

impl DirectPolicy {
    /// The policy in the direct subset, or `None` if it uses anything else
    /// (or is linked from a template).
    pub(crate) fn compile(policy: &Policy) -> Option<DirectPolicy> {
        if !policy.is_static() {
            return None;
        }
        let resource = match policy.resource_constraint() {
            ResourceConstraint::Any => ResourceScope::Any,
            ResourceConstraint::Eq(e) => ResourceScope::Eq(e),
            ResourceConstraint::In(e) => ResourceScope::In(e),
            ResourceConstraint::Is(t) => ResourceScope::Is(t),
            ResourceConstraint::IsIn(t, e) => ResourceScope::IsIn(t, e),
        };
        let json = policy.to_json().ok()?;
        let conditions = json
            .get("conditions")?
            .as_array()?
            .iter()
            .map(|c| {
                let body = compile(c.get("body")?)?;
                match c.get("kind")?.as_str()? {
                    "when" => Some(body),
                    "unless" => Some(Expr::Not(Box::new(body))),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(DirectPolicy {
            id: policy.id().to_string(),
            forbid: policy.effect() == Effect::Forbid,
            resource,
            conditions,
        })
    }

    /// Whether the policy is satisfied, given that its principal and action
    /// scopes match (the slicer's guarantee).
    fn satisfied(&self, req: &DirectRequest<'_>, entities: &DirectEntities) -> Eval<bool> {
        let resource_fits = match &self.resource {
            ResourceScope::Any => true,
            ResourceScope::Eq(e) => req.resource == e,
            ResourceScope::In(e) => entities.within(req.resource, e),
            ResourceScope::Is(t) => req.resource.type_name() == t,
            ResourceScope::IsIn(t, e) => {
                req.resource.type_name() == t && entities.within(req.resource, e)
            }
        };
        if !resource_fits {
            return Ok(false);
        }
        for c in &self.conditions {
            if !boolean(eval(c, req, entities)?)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Evaluates a slice directly; `None` if any policy of it is not in the
/// subset or any evaluation gave up.
pub(crate) fn authorize<'p>(
    slice: impl Iterator<Item = Option<&'p DirectPolicy>>,
    req: &DirectRequest<'_>,
    entities: &DirectEntities,
) -> Option<DirectResponse> {
    let mut permits = Vec::new();
    let mut forbids = Vec::new();
    for p in slice {
        let p = p?;
        if p.satisfied(req, entities).ok()? {
            if p.forbid {
                forbids.push(p.id.clone());
            } else {
                permits.push(p.id.clone());
            }
        }
    }
    Some(if forbids.is_empty() {
        DirectResponse {
            allow: !permits.is_empty(),
            determining: permits,
        }
    } else {
        DirectResponse {
            allow: false,
            determining: forbids,
        }
    })
}

fn compile(e: &Value) -> Option<Expr> {
    let node = e.as_object().filter(|o| o.len() == 1)?;
    let (op, arg) = node.iter().next()?;
    let left = || Some(Box::new(compile(arg.get("left")?)?));
    let right = || Some(Box::new(compile(arg.get("right")?)?));
    Some(match op.as_str() {
        "Value" => literal(arg)?,
        "Var" => Expr::Var(match arg.as_str()? {
            "principal" => Var::Principal,
            "action" => Var::Action,
            "resource" => Var::Resource,
            "context" => Var::Context,
            _ => return None,
        }),
        "!" => Expr::Not(Box::new(compile(arg.get("arg")?)?)),
        "&&" => Expr::And(left()?, right()?),
        "||" => Expr::Or(left()?, right()?),
        "==" | "!=" => Expr::Eq {
            left: left()?,
            right: right()?,
            negated: op == "!=",
        },
        "<" => Expr::Compare(Compare::Less, left()?, right()?),
        "<=" => Expr::Compare(Compare::LessEq, left()?, right()?),
        ">" => Expr::Compare(Compare::Greater, left()?, right()?),
        ">=" => Expr::Compare(Compare::GreaterEq, left()?, right()?),
        "in" => {
            let target = arg.get("right")?;
            match entity_list(target) {
                Some(list) => Expr::InLiterals(left()?, list),
                None => Expr::InEntity(left()?, right()?),
            }
        }
        "." => Expr::Attr(left()?, arg.get("attr")?.as_str()?.to_owned()),
        // `e has a.b` (a list of names) is left to Cedar.
        "has" => Expr::Has(left()?, arg.get("attr")?.as_str()?.to_owned()),
        "if-then-else" => Expr::If(
            Box::new(compile(arg.get("if")?)?),
            Box::new(compile(arg.get("then")?)?),
            Box::new(compile(arg.get("else")?)?),
        ),
        _ => return None,
    })
}

fn literal(v: &Value) -> Option<Expr> {
    Some(match plain_value(v)? {
        PlainValue::Bool(b) => Expr::Bool(b),
        PlainValue::Long(n) => Expr::Long(n),
        PlainValue::String(s) => Expr::Str(s.to_owned()),
        PlainValue::Entity(u) => Expr::Entity(u),
        PlainValue::Set(_) | PlainValue::Record(_) => return None,
    })
}

fn entity_literal(v: &Value) -> Option<EntityUid> {
    match plain_value(v)? {
        PlainValue::Entity(u) => Some(u),
        _ => None,
    }
}

/// The entities of `in`'s right side when it is an entity literal or a set
/// literal of entity literals, which Cedar evaluates without error.
fn entity_list(e: &Value) -> Option<Vec<EntityUid>> {
    let node = e.as_object().filter(|o| o.len() == 1)?;
    if let Some(v) = node.get("Value") {
        return Some(vec![entity_literal(v)?]);
    }
    node.get("Set")?
        .as_array()?
        .iter()
        .map(|item| entity_literal(item.as_object()?.get("Value")?))
        .collect()
}

fn boolean(v: Val<'_>) -> Eval<bool> {
    match v {
        Val::Bool(b) => Ok(b),
        _ => Err(GiveUp),
    }
}

fn entity<'a>(v: &'a Val<'_>) -> Eval<&'a EntityUid> {
    match v {
        Val::Entity(e) => Ok(e),
        _ => Err(GiveUp),
    }
}

fn long(v: Val<'_>) -> Eval<i64> {
    match v {
        Val::Long(n) => Ok(n),
        _ => Err(GiveUp),
    }
}

fn eval<'a>(e: &'a Expr, req: &DirectRequest<'a>, entities: &'a DirectEntities) -> Eval<Val<'a>> {
    let sub = |e: &'a Expr| eval(e, req, entities);
    Ok(match e {
        Expr::Long(n) => Val::Long(*n),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Str(s) => Val::Str(Cow::Borrowed(s)),
        Expr::Entity(u) => Val::Entity(Cow::Borrowed(u)),
        Expr::Var(Var::Principal) => Val::Entity(Cow::Borrowed(req.principal)),
        Expr::Var(Var::Action) => Val::Entity(Cow::Borrowed(req.action)),
        Expr::Var(Var::Resource) => Val::Entity(Cow::Borrowed(req.resource)),
        Expr::Var(Var::Context) => Val::Json(req.context),
        Expr::Not(a) => Val::Bool(!boolean(sub(a)?)?),
        Expr::And(a, b) => Val::Bool(boolean(sub(a)?)? && boolean(sub(b)?)?),
        Expr::Or(a, b) => Val::Bool(boolean(sub(a)?)? || boolean(sub(b)?)?),
        Expr::If(c, t, f) => {
            if boolean(sub(c)?)? {
                sub(t)?
            } else {
                sub(f)?
            }
        }
        Expr::Eq {
            left,
            right,
            negated,
        } => Val::Bool(equal(&sub(left)?, &sub(right)?)? != *negated),
        Expr::Compare(op, a, b) => {
            let (a, b) = (long(sub(a)?)?, long(sub(b)?)?);
            Val::Bool(match op {
                Compare::Less => a < b,
                Compare::LessEq => a <= b,
                Compare::Greater => a > b,
                Compare::GreaterEq => a >= b,
            })
        }
        Expr::InLiterals(a, targets) => {
            let a = sub(a)?;
            let a = entity(&a)?;
            Val::Bool(targets.iter().any(|t| entities.within(a, t)))
        }
        Expr::InEntity(a, b) => {
            let (a, b) = (sub(a)?, sub(b)?);
            Val::Bool(entities.within(entity(&a)?, entity(&b)?))
        }
        Expr::Attr(a, name) => attr(sub(a)?, name, entities)?,
        Expr::Has(a, name) => Val::Bool(match sub(a)? {
            Val::Entity(e) => entities.attrs(&e)?.contains_key(name),
            Val::Json(m) => m.contains_key(name),
            Val::Record(r) => r.contains_attribute(name),
            _ => return Err(GiveUp),
        }),
    })
}

/// Cedar's `==` on the values of the subset: equal kinds compare by value,
/// different kinds are unequal. Records are left to Cedar.
fn equal(a: &Val<'_>, b: &Val<'_>) -> Eval<bool> {
    Ok(match (a, b) {
        (Val::Json(_) | Val::Record(_), _) | (_, Val::Json(_) | Val::Record(_)) => {
            return Err(GiveUp);
        }
        (Val::Long(x), Val::Long(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Entity(x), Val::Entity(y)) => x == y,
        _ => false,
    })
}

fn attr<'a>(v: Val<'a>, name: &str, entities: &'a DirectEntities) -> Eval<Val<'a>> {
    match v {
        Val::Entity(e) => from_cedar(entities.attrs(&e)?.get(name).ok_or(GiveUp)?),
        Val::Json(m) => from_json(m.get(name).ok_or(GiveUp)?),
        Val::Record(r) => from_cedar(r.get(name).ok_or(GiveUp)?),
        _ => Err(GiveUp),
    }
}

fn from_cedar(r: &EvalResult) -> Eval<Val<'_>> {
    Ok(match r {
        EvalResult::Bool(b) => Val::Bool(*b),
        EvalResult::Long(n) => Val::Long(*n),
        EvalResult::String(s) => Val::Str(Cow::Borrowed(s)),
        EvalResult::EntityUid(e) => Val::Entity(Cow::Borrowed(e)),
        EvalResult::Record(r) => Val::Record(r),
        EvalResult::Set(_) | EvalResult::ExtensionValue(_) => return Err(GiveUp),
    })
}

/// A context value, read as Cedar reads it.
fn from_json(v: &Value) -> Eval<Val<'_>> {
    Ok(match plain_value(v).ok_or(GiveUp)? {
        PlainValue::Bool(b) => Val::Bool(b),
        PlainValue::Long(n) => Val::Long(n),
        PlainValue::String(s) => Val::Str(Cow::Borrowed(s)),
        PlainValue::Entity(u) => Val::Entity(Cow::Owned(u)),
        PlainValue::Record(m) => Val::Json(m),
        PlainValue::Set(_) => return Err(GiveUp),
    })
}

#[cfg(test)]
mod tests;
