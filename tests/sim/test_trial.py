"""Short datagen trials: friction and grip force decide the outcome, as Coulomb friction says."""
import numpy as np

from benchbot.core.types import GraspPose
from benchbot.sim.placement import drop_object
from benchbot.sim.trial import Perturbation, TrialSettings, run_trial
from benchbot.sim.world import SimWorld


def _centre_grasp(sim) -> GraspPose:
    """Across the narrow horizontal side, pads centred on the centre of mass's height."""
    pts = sim.object_points_world()
    com = sim.data.xipos[sim.object_body].copy()
    xy = pts[:, :2] - pts[:, :2].mean(0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    return GraspPose(np.array([com[0], com[1], com[2] + 0.005]), np.array([0.0, 0.0, -1.0]),
                     np.array([vecs[0, 0], vecs[1, 0], 0.0]), 0.085, "base")


def test_friction_and_force_decide_the_outcome(paper):
    world = SimWorld(dict(paper.objects))
    sim = world.load("foam-brick")  # 28 g: ~0.27 N weight, ~0.4 N with the lift's acceleration
    drop_object(sim, np.random.default_rng(4))
    settled = sim.save_state()
    grasp = _centre_grasp(sim)
    ok, lift = run_trial(sim, settled, grasp)
    assert ok and lift > 0.05
    weak, strong = TrialSettings(grip_force_n=20.0), TrialSettings(grip_force_n=127.0)
    # pad μ 0.005: 2 pads × 20 N × 0.005 = 0.2 N < the weight: it slips out
    ok, lift = run_trial(sim, settled, grasp, weak, Perturbation(friction_scale=0.005))
    assert not ok and lift < 0.05
    # 2 × 20 N × 0.05 = 2 N and 2 × 127 N × 0.01 = 2.5 N hold it
    assert run_trial(sim, settled, grasp, weak, Perturbation(friction_scale=0.05))[0]
    assert run_trial(sim, settled, grasp, strong, Perturbation(friction_scale=0.01))[0]
    # pad friction and the scene state are restored after every trial
    ok2, lift2 = run_trial(sim, settled, grasp)
    assert ok2 and abs(lift2 - run_trial(sim, settled, grasp)[1]) < 1e-9
    world.close()
