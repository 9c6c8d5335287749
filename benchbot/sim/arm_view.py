"""Display-only UR5e: inverse kinematics puts its flange on the simulated gripper for pictures.
The arm takes no part in the physics (no contacts, no actuators)."""
from __future__ import annotations

import numpy as np

from benchbot.sim.physics import Sim
from benchbot.sim.scene import FLANGE_IN_TOOL_M

UR_JOINTS = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
             "wrist_3_joint")
UR_HOME = np.array([0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0])
# joint bounds for the IK: shoulder lifted and elbow bent upwards (elbow-up, clear of the table)
LOWER = np.array([-2 * np.pi, -np.pi, 0.0, -2 * np.pi, -2 * np.pi, -2 * np.pi])
UPPER = np.array([2 * np.pi, 0.0, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi])


def _rot_error(r_target: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Axis-angle vector rotating r onto r_target (world frame)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(r_target @ r.T).as_rotvec()


def pose_arm(sim: Sim, iters: int = 60) -> bool:
    """Set the UR5e joints so its attachment site matches the gripper mount. False if no arm/IK."""
    mj, m = sim.mj, sim.model
    site = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, "ur_attachment_site")
    if site < 0:
        return False
    jids = [mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, f"ur_{j}") for j in UR_JOINTS]
    qadr = np.array([m.jnt_qposadr[j] for j in jids])
    dadr = np.array([m.jnt_dofadr[j] for j in jids])
    tool = sim.tool_pose()
    target_p = tool.position_m + FLANGE_IN_TOOL_M * tool.rotation[:, 2]
    target_r = tool.rotation  # flange z = tool z (towards the fingers)
    from scipy.optimize import least_squares

    d = mj.MjData(m)
    d.qpos[:] = sim.data.qpos

    def residual(q: np.ndarray) -> np.ndarray:
        d.qpos[qadr] = q
        mj.mj_kinematics(m, d)
        r = d.site_xmat[site].reshape(3, 3)
        return np.concatenate([target_p - d.site_xpos[site], 0.2 * _rot_error(target_r, r)])

    current = sim.data.qpos[qadr].copy()
    starts = [current] if not np.allclose(current, 0.0) else []
    starts += [UR_HOME, UR_HOME + np.array([np.pi, 0, 0, 0, 0, 0])]
    best = None
    for q0 in starts:
        sol = least_squares(residual, np.clip(q0, LOWER + 1e-6, UPPER - 1e-6), bounds=(LOWER, UPPER),
                            max_nfev=iters * 10)
        if best is None or sol.cost < best.cost:
            best = sol
        if best.cost < 1e-8:
            break
    assert best is not None  # starts is never empty
    d.qpos[qadr] = best.x
    ok = bool(best.cost < 1e-6)
    sim.data.qpos[qadr] = d.qpos[qadr]
    sim.data.qvel[dadr] = 0.0
    mj.mj_kinematics(m, sim.data)
    return ok
