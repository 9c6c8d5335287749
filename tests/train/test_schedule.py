import pytest

from benchbot.train.schedule import (
    SCHEDULES,
    EarlyStopping,
    Schedule,
    compressed,
    gqstn_paper,
    multigrasp_default,
)


def test_paper_schedule_switches_at_the_right_epochs() -> None:
    s = gqstn_paper()
    assert s.total_epochs == 40
    table = {e: (s.at(e).xi, s.at(e).lr, s.at(e).teacher_forcing, s.at(e).early_stop) for e in range(1, 41)}
    assert all(table[e] == (1.0, 1e-3, True, False) for e in range(1, 7))
    assert all(table[e] == (0.5, 2e-4, True, False) for e in range(7, 10))
    assert all(table[e] == (0.2, 4e-5, True, False) for e in range(10, 13))
    assert all(table[e] == (0.0, 4e-5, False, False) for e in range(13, 22))
    assert all(table[e] == (0.0, 8e-6, False, True) for e in range(22, 41))
    with pytest.raises(ValueError):
        s.at(41)
    assert Schedule.from_dict(s.to_dict()) == s
    assert multigrasp_default().at(1).lr == 1e-3


def test_compressed_keeps_phase_order_and_teacher_phases() -> None:
    c = compressed(gqstn_paper(), 3)
    assert [p.epochs for p in c.phases] == [2, 1, 1, 3, 6]
    assert c.teacher_epochs == 4
    assert c.at(4).xi == 0.2 and c.at(4).teacher_forcing and not c.at(5).teacher_forcing


def test_early_stopping_only_in_allowed_phases() -> None:
    es = EarlyStopping(patience=2)
    assert es.update(1.0, allowed=False) == (True, False)
    assert es.update(1.5, allowed=False) == (False, False)  # not counted outside early-stop phases
    assert es.update(1.2, allowed=True) == (False, False)
    assert es.update(0.9, allowed=True) == (True, False)  # improvement resets the count
    assert es.update(1.0, allowed=True) == (False, False)
    assert es.update(1.0, allowed=True) == (False, True)
    assert EarlyStopping.from_state(es.state()) == es


def test_finetune_loc_keeps_a_localization_term_and_stops_early() -> None:
    s = SCHEDULES["finetune-loc"]()
    assert all(s.at(e).xi == 0.2 and not s.at(e).teacher_forcing for e in range(1, s.total_epochs + 1))
    assert (s.at(1).lr, s.at(2).lr, s.at(3).lr) == (4e-5, 4e-5, 8e-6)
    assert not s.at(2).early_stop and s.at(3).early_stop
    assert Schedule.from_dict(s.to_dict()) == s
