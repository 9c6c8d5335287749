"""Assemble README.md from docs/readme/*.md (sorted by name; image paths made root-relative)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["00-intro", "10-harness", "console", "report", "sim", "perception", "gqcnn", "models", "hardware", "gripper",
         "arm", "80-safety", "90-development"]


def build() -> str:
    parts = []
    for name in ORDER:
        text = (ROOT / "docs" / "readme" / f"{name}.md").read_text(encoding="utf-8").strip()
        parts.append(text.replace("](../images/", "](docs/images/"))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    (ROOT / "README.md").write_text(build(), encoding="utf-8")
    print("README.md written")
