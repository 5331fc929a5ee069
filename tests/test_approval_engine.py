"""`advance` and chain resolution, from tables."""

from __future__ import annotations

import pytest

from bot.config import load_config, parse_config
from bot.org import Org
from handlers.approval_engine import (
    Action,
    Decision,
    Flow,
    FlowStatus,
    NotAllowed,
    Refusal,
    Step,
    StepStatus,
    advance,
    start,
)
from tests.conftest import ROOT, example_raw

CONFIG = load_config(ROOT / "infodesk" / "config.example.toml", environ={})
ORG = Org(CONFIG)


def flow_for(chain: str, requester: str, class_key: str | None = None) -> Flow:
    steps = tuple(
        Step(s.role, s.mode, s.approvers) for s in ORG.resolve_chain(CONFIG.chains[chain], requester, class_key)
    )
    return start(requester, steps).flow


def approvers(chain: str, requester: str, class_key: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.role, s.approvers) for s in ORG.resolve_chain(CONFIG.chains[chain], requester, class_key)]


# (chain, requester, class, expected [(role, approvers)])
CHAINS = [
    (
        "footage_student",
        "zhaolei",
        "mech2402",
        [("class_teacher", ("liuna",)), ("dept_head", ("songtao",)), ("vp_info_center", ("liuyang",))],
    ),
    ("footage_staff", "zhaolei", None, [("dept_head", ("majun",)), ("vp_info_center", ("liuyang",))]),
    (
        "footage_staff",
        "qianfeng",
        None,  # an office lead asking about staff in his own office
        [("vp_supervising", ("zhaomin",)), ("vp_info_center", ("liuyang",))],
    ),
    (
        "computer_office",
        "huangli",
        None,
        [
            ("office_lead", ("zhengmei",)),
            ("vp_supervising", ("zhaomin",)),
            ("principal", ("wangjianguo",)),
            ("director", ("chenhao",)),
        ],
    ),
    (
        "computer_department",
        "zhaolei",
        None,
        [
            ("dept_deputy", ("yangfan",)),
            ("dept_head", ("majun",)),
            ("vp_campus", ("zhaomin",)),
            ("principal", ("wangjianguo",)),
            ("director", ("chenhao",)),
        ],
    ),
    (
        "computer_department",
        "luwei",
        None,  # the deputy himself: his step goes up to the head
        [
            ("dept_head", ("songtao",)),
            ("vp_campus", ("sunli",)),
            ("principal", ("wangjianguo",)),
            ("director", ("chenhao",)),
        ],
    ),
    (
        "computer_office",
        "zhaomin",
        None,  # the supervising VP herself: her step goes to the principal
        [("office_lead", ("zhengmei",)), ("principal", ("wangjianguo",)), ("director", ("chenhao",))],
    ),
    (
        "computer_office",
        "wangjianguo",
        None,  # the principal: his step goes to the committee
        [
            ("office_lead", ("zhengmei",)),
            ("vp_supervising", ("zhaomin",)),
            ("committee", ("liuyang", "zhaomin")),
            ("director", ("chenhao",)),
        ],
    ),
    (
        "footage_student",
        "zhangwei",
        "it2401",  # the class teacher asks about his own class
        [("dept_head", ("majun",)), ("vp_info_center", ("liuyang",))],
    ),
]


@pytest.mark.parametrize(("chain", "requester", "klass", "expected"), CHAINS)
def test_chain_resolution(chain: str, requester: str, klass: str | None, expected: list) -> None:
    assert approvers(chain, requester, klass) == expected


@pytest.mark.parametrize(("chain", "requester", "klass", "expected"), CHAINS)
def test_every_chain_approves_to_the_end(chain: str, requester: str, klass: str | None, expected: list) -> None:
    flow = flow_for(chain, requester, klass)
    for i, (_, people) in enumerate(expected):
        assert flow.current == i and flow.pending_approvers() == people
        out = advance(flow, Decision(people[0], Action.APPROVE))
        flow = out.flow
        if i + 1 < len(expected):
            assert out.events == ("step_approved", "advanced")
            assert out.new_approvers == expected[i + 1][1]
        else:
            assert out.events == ("step_approved", "approved")
    assert flow.status is FlowStatus.APPROVED and flow.step is None


@pytest.mark.parametrize("at", [0, 1, 2, 3])
def test_rejection_at_each_step_ends_the_flow(at: int) -> None:
    flow = flow_for("computer_department", "zhaolei")
    for _ in range(at):
        flow = advance(flow, Decision(flow.pending_approvers()[0], Action.APPROVE)).flow
    actor = flow.pending_approvers()[0]
    with pytest.raises(NotAllowed) as err:
        advance(flow, Decision(actor, Action.REJECT, reason="  "))
    assert err.value.refusal is Refusal.REASON_REQUIRED
    out = advance(flow, Decision(actor, Action.REJECT, reason="预算不足"))
    assert out.flow.status is FlowStatus.REJECTED and out.events == ("rejected",)
    assert out.flow.steps[at].status is StepStatus.REJECTED
    with pytest.raises(NotAllowed) as err:
        advance(out.flow, Decision(actor, Action.APPROVE))
    assert err.value.refusal is Refusal.NOT_PENDING


REFUSALS = [
    # (who, action, extra, refusal) against the first step of zhaolei's department chain (yangfan)
    ("majun", Action.APPROVE, {}, Refusal.NOT_APPROVER),  # the next step's approver, too early
    ("zhaolei", Action.APPROVE, {}, Refusal.NOT_APPROVER),  # the requester
    ("lihua", Action.REJECT, {"reason": "x"}, Refusal.NOT_APPROVER),
    ("yangfan", Action.WITHDRAW, {}, Refusal.NOT_REQUESTER),
    ("yangfan", Action.TRANSFER, {"target": "zhaolei"}, Refusal.BAD_TARGET),  # to the requester
    ("yangfan", Action.TRANSFER, {"target": "yangfan"}, Refusal.BAD_TARGET),
    ("yangfan", Action.TRANSFER, {}, Refusal.BAD_TARGET),
    ("yangfan", Action.APPROVE, {"step": 1}, Refusal.STALE_STEP),  # a click on an old card
]


@pytest.mark.parametrize(("actor", "action", "extra", "refusal"), REFUSALS)
def test_refusals_change_nothing(actor: str, action: Action, extra: dict, refusal: Refusal) -> None:
    flow = flow_for("computer_department", "zhaolei")
    with pytest.raises(NotAllowed) as err:
        advance(flow, Decision(actor, action, **extra))
    assert err.value.refusal is refusal


def test_transfer_hands_the_step_to_another_person() -> None:
    flow = flow_for("computer_department", "zhaolei")
    out = advance(flow, Decision("yangfan", Action.TRANSFER, target="lihua"))
    assert out.events == ("transferred",) and out.new_approvers == ("lihua",) and out.retired == ("yangfan",)
    assert out.flow.pending_approvers() == ("lihua",)
    with pytest.raises(NotAllowed):
        advance(out.flow, Decision("yangfan", Action.APPROVE))
    assert advance(out.flow, Decision("lihua", Action.APPROVE)).flow.pending_approvers() == ("majun",)


def test_withdraw_by_requester_retires_every_card() -> None:
    flow = flow_for("footage_staff", "zhaolei")
    out = advance(flow, Decision("zhaolei", Action.WITHDRAW))
    assert out.flow.status is FlowStatus.WITHDRAWN and out.retired == ("majun",)


def test_substitute_receives_the_step_of_someone_away() -> None:
    flow = flow_for("computer_department", "zhaolei")
    out = advance(flow, Decision("yangfan", Action.APPROVE), away={"majun": "songtao"})
    assert out.new_approvers == ("songtao",)
    assert out.flow.step is not None and out.flow.step.on_behalf == {"songtao": "majun"}
    out = advance(out.flow, Decision("songtao", Action.APPROVE))
    assert out.flow.pending_approvers() == ("zhaomin",)


def test_substitute_who_is_the_requester_is_ignored() -> None:
    flow = start("zhaolei", (Step("dept_head", "any", ("majun",)),), away={"majun": "zhaolei"}).flow
    assert flow.pending_approvers() == ("majun",)


def test_all_mode_needs_everyone() -> None:
    flow = start("zhaolei", (Step("committee", "all", ("liuyang", "zhaomin", "wangjianguo")),)).flow
    out = advance(flow, Decision("liuyang", Action.APPROVE))
    assert out.events == ("step_progress",) and out.flow.pending_approvers() == ("zhaomin", "wangjianguo")
    with pytest.raises(NotAllowed) as err:
        advance(out.flow, Decision("liuyang", Action.APPROVE))
    assert err.value.refusal is Refusal.ALREADY_DECIDED
    out = advance(out.flow, Decision("zhaomin", Action.APPROVE))
    out = advance(out.flow, Decision("wangjianguo", Action.APPROVE))
    assert out.flow.status is FlowStatus.APPROVED


def test_escalation_adds_the_next_level_and_either_may_decide() -> None:
    flow = flow_for("footage_staff", "zhaolei")
    out = advance(flow, Decision("system", Action.ESCALATE, targets=("liuyang", "zhaolei")))
    assert out.events == ("escalated",) and out.new_approvers == ("liuyang",)  # never the requester
    assert out.flow.step is not None and out.flow.step.escalated
    assert advance(out.flow, Decision("liuyang", Action.APPROVE)).flow.current == 1


def test_flow_round_trips_through_json() -> None:
    flow = advance(
        flow_for("computer_department", "zhaolei"), Decision("yangfan", Action.APPROVE), away={"majun": "songtao"}
    ).flow
    assert Flow.from_json(flow.to_json()) == flow


def test_unresolvable_chain_is_a_config_error_naming_person_and_role() -> None:
    from bot.config import ConfigError

    raw = example_raw()
    for p in raw["people"]:
        if "vp_info_center" in p["roles"]:
            p["roles"].remove("vp_info_center")
    raw["approval"]["next_level"].pop("vp_info_center")
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={})
    text = "\n".join(err.value.problems)
    assert (
        '审批链 "调监控（教职工）"（chains.footage_staff）第 2 步的角色 vp_info_center（信息中心主管校长）没有人担任，'
        "这些申请人的申请无人审批：全部单位" in text
    )
