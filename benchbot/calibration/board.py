"""Calibration boards (ChArUco, checkerboard): their spec, a printable image, and detection with
OpenCV (corners, then solvePnP for the board pose in the camera frame)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchbot.core.geometry import make_transform, transform_points
from benchbot.core.types import Intrinsics

_ARUCO_DICTS = ("DICT_4X4_50", "DICT_4X4_100", "DICT_5X5_50", "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_100")


class BoardSpec(BaseModel):
    """A calibration board. checkerboard: cols × rows *inner corners*; charuco: cols × rows
    *squares* with ArUco markers (unambiguous orientation: recommended)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["charuco", "checkerboard"] = "charuco"
    cols: int = Field(7, ge=2, le=50)
    rows: int = Field(5, ge=2, le=50)
    square_m: float = Field(0.05, gt=0.0, le=0.5)  # 7×5 × 50 mm squares fit an A3 sheet
    marker_m: float = Field(0.037, gt=0.0, le=0.5)  # charuco only
    dictionary: str = "DICT_5X5_100"  # charuco only

    @field_validator("dictionary")
    @classmethod
    def _known_dict(cls, v: str) -> str:
        if v not in _ARUCO_DICTS:
            raise ValueError(f"unknown ArUco dictionary '{v}' (use one of {', '.join(_ARUCO_DICTS)})")
        return v

    @model_validator(mode="after")
    def _marker_fits(self) -> BoardSpec:
        if self.kind == "charuco" and self.marker_m >= self.square_m:
            raise ValueError("marker_m must be smaller than square_m")
        return self

    def cv_board(self):
        import cv2

        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, d)

    def corner_points(self) -> np.ndarray:
        """Board-frame (x right, y down, z into the board) coordinates of the detectable corners."""
        if self.kind == "charuco":
            return np.asarray(self.cv_board().getChessboardCorners(), float)
        g = np.mgrid[0:self.cols, 0:self.rows].T.reshape(-1, 2) * self.square_m
        return np.hstack([g, np.zeros((len(g), 1))])

    def image(self, px_per_square: int = 100, margin_px: int = 50) -> np.ndarray:
        """A printable image of the board (uint8). Checkerboard: (cols+1) × (rows+1) squares."""
        if self.kind == "charuco":
            size = (self.cols * px_per_square + 2 * margin_px, self.rows * px_per_square + 2 * margin_px)
            return self.cv_board().generateImage(size, marginSize=margin_px)
        nx, ny = self.cols + 1, self.rows + 1
        sq = (np.add.outer(np.arange(ny), np.arange(nx)) % 2 == 0).astype(np.uint8) * 255
        img = np.kron(sq, np.ones((px_per_square, px_per_square), np.uint8))
        return np.pad(img, margin_px, constant_values=255)

    def image_origin_px(self, px_per_square: int = 100, margin_px: int = 50) -> float:
        """Pixel coordinate (pixel-centre convention) of the board frame's origin in `image()`."""
        offset = margin_px if self.kind == "charuco" else margin_px + px_per_square
        return offset - 0.5


def save_board_image(path: str | Path, board: BoardSpec, dpi: int = 300, margin_m: float = 0.01) -> Path:
    """Write a printable PNG of the board whose squares measure `board.square_m` when printed at
    100 % scale (the DPI is stored in the file). Measure a printed square and fix square_m if needed."""
    from PIL import Image

    px_per_square = max(10, int(round(board.square_m / 0.0254 * dpi)))
    margin_px = int(round(margin_m / 0.0254 * dpi))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(board.image(px_per_square, margin_px)).save(path, dpi=(dpi, dpi))
    return path


@dataclass
class BoardObservation:
    T_camera_board: np.ndarray
    image_points: np.ndarray  # (N, 2) x=col, y=row
    object_points: np.ndarray  # (N, 3) board frame
    reprojection_px: float


def _camera_matrix(intr: Intrinsics) -> np.ndarray:
    return np.array([[intr.fx, 0, intr.cx], [0, intr.fy, intr.cy], [0, 0, 1.0]])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an IR/intensity image to uint8 for detection (robust to the IR's wide range)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    f = np.nan_to_num(img.astype(np.float32))
    lo, hi = np.percentile(f, 1), np.percentile(f, 99)
    if hi <= lo:
        return np.zeros(f.shape, np.uint8)
    return (np.clip((f - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def detect_board(image: np.ndarray, board: BoardSpec, intr: Intrinsics,
                 dist: np.ndarray | None = None, min_corners: int = 6) -> BoardObservation | None:
    """Find the board in an intensity image (e.g. the Kinect's IR image) and its pose in the
    camera frame by solvePnP. None when the board is not found."""
    import cv2

    gray = to_uint8(image)
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    if board.kind == "charuco":
        corners, ids, *_ = cv2.aruco.CharucoDetector(board.cv_board()).detectBoard(gray)
        if corners is None or ids is None or len(ids) < min_corners:
            return None
        obj, img = board.cv_board().matchImagePoints(corners, ids)
    else:
        found, corners = cv2.findChessboardCornersSB(gray, (board.cols, board.rows))
        if not found:
            return None
        obj, img = board.corner_points().astype(np.float32), corners
    obj = np.asarray(obj, np.float64).reshape(-1, 3)
    img = np.asarray(img, np.float64).reshape(-1, 2)
    k = _camera_matrix(intr)
    d = np.zeros(5) if dist is None else np.asarray(dist, float)
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, d, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, d)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    t = make_transform(cv2.Rodrigues(rvec)[0], tvec.ravel())
    return BoardObservation(t, img, obj, err)


def board_points_in_camera(obs: BoardObservation, board: BoardSpec, indices: Sequence[int] | None = None) -> np.ndarray:
    """Camera-frame positions of the board's corners (all, or the listed corner ids, detected or
    not) from the board pose of a detection."""
    pts = board.corner_points()
    return transform_points(obs.T_camera_board, pts if indices is None else pts[list(indices)])
