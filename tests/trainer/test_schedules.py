"""Tests for trainer.schedules: values at start, warm-up end, mid and end, exact resume, lengths per run."""

import math

import pytest

from musicssl.trainer.schedules import CosineMomentum, TeacherTemperature, WarmupCosine, warmup_cosine


def test_warmup_cosine_key_points() -> None:
    kw = {"total_steps": 110, "warmup_steps": 10, "peak": 2.0, "start": 0.0, "final": 0.5}
    assert warmup_cosine(0, **kw) == 0.0
    assert warmup_cosine(5, **kw) == pytest.approx(1.0)
    assert warmup_cosine(10, **kw) == pytest.approx(2.0)
    assert warmup_cosine(60, **kw) == pytest.approx(1.25)  # half-way down the cosine
    assert warmup_cosine(110, **kw) == pytest.approx(0.5)
    assert warmup_cosine(500, **kw) == pytest.approx(0.5)


def test_lr_schedule_key_points() -> None:
    schedule = WarmupCosine(peak=0.4, total_steps=20, warmup_steps=4)
    assert schedule(0) == 0.0
    assert schedule(2) == pytest.approx(0.2)
    assert schedule(4) == pytest.approx(0.4)
    assert schedule(12) == pytest.approx(0.2)
    assert schedule(16) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    assert schedule(20) == pytest.approx(0.0, abs=1e-12)
    assert WarmupCosine(peak=1.0, total_steps=10, warmup_steps=0)(0) == 1.0


def test_lr_schedule_resume_is_exact() -> None:
    settings = {"peak": 0.3, "total_steps": 30, "warmup_steps": 5, "final": 0.03}
    uninterrupted = WarmupCosine(**settings)
    reference = [uninterrupted(step) for step in range(1, 31)]
    first = WarmupCosine(**settings)
    head = [first(step) for step in range(1, 14)]
    resumed = WarmupCosine(**settings)  # the step is all a resume needs: the schedule holds no position
    resumed.load_state_dict(first.state_dict())
    tail = [resumed(step) for step in range(14, 31)]
    assert head + tail == reference  # exact, not approximate
    assert reference[-1] == pytest.approx(0.03)


def test_lr_schedule_refuses_other_settings_on_resume() -> None:
    saved = WarmupCosine(peak=0.1, total_steps=30, warmup_steps=5).state_dict()
    with pytest.raises(ValueError, match="total_steps=30"):
        WarmupCosine(peak=0.1, total_steps=40, warmup_steps=5).load_state_dict(saved)


def test_bad_step_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="warmup_steps=50"):
        WarmupCosine(peak=0.1, total_steps=10, warmup_steps=50)


def test_momentum_key_points_and_resume() -> None:
    momentum = CosineMomentum(total_steps=100)
    assert momentum(0) == pytest.approx(0.996)
    assert momentum(50) == pytest.approx(0.998)
    assert momentum(100) == pytest.approx(1.0)
    assert momentum(150) == pytest.approx(1.0)
    assert momentum(25) < 0.998 - 0.001  # cosine moves slowly at first: 1 - 0.004 * (1 + cos(pi/4)) / 2
    restored = CosineMomentum(total_steps=100)
    restored.load_state_dict({"position": 37, **momentum.state_dict()})  # a checkpoint from before: position = step
    assert restored.state_dict() == {"total_steps": 100, "start": 0.996, "end": 1.0}
    assert restored(37) == momentum(37)
    assert restored(38) == momentum(38)


def test_teacher_temperature_key_points_and_resume() -> None:
    temperature = TeacherTemperature(warmup_steps=30, start=0.04, end=0.07)
    assert temperature(0) == pytest.approx(0.04)
    assert temperature(15) == pytest.approx(0.055)
    assert temperature(30) == pytest.approx(0.07)
    assert temperature(1000) == pytest.approx(0.07)
    state = temperature.state_dict()
    assert state == {"start": 0.04, "end": 0.07, "warmup_steps": 30}
    with pytest.raises(ValueError, match="warmup_steps"):
        TeacherTemperature(warmup_steps=10).load_state_dict(state)
    assert TeacherTemperature(warmup_steps=0)(0) == 0.07
