#!/usr/bin/env python3
"""images: image import in every source format docs/api.md names.

The guest disk is converted with qemu-img into raw, vmdk and vhd (QEMU's
"vpc") in the allowed dir; each is imported with format "auto" and the raw one
also with its explicit format. Each import must run as an image_import task
that ends at 100, store a qcow2 whose sha256 is the one reported and whose
guest-visible contents equal the source (qemu-img compare), and record the
detected source_format. A file imported under the wrong explicit format must
fail as a task and leave no image row and no file. A VM made from the
raw-imported image must boot. Deleting the images removes their files.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import vesseltest as vt  # noqa: E402
from vesseltest import log  # noqa: E402

FORMATS = [("raw", "raw", "raw"), ("vmdk", "vmdk", "vmdk"), ("vpc", "vhd", "vhd")]  # qemu-img, api, ext


def stored_path(d, sha):
    for dirpath, _, files in os.walk(d.data_dir):
        for n in files:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p) and os.path.getsize(p) > 512 and open(p, "rb").read(4) == b"QFI\xfb":
                if vt.sha256_file(p) == sha:
                    return p
    return None


def main(t):
    vt.need_vesseld()
    (disk,) = vt.need_guest("disk.qcow2")
    d = t.daemon("images").start()
    srcs = {}
    for qfmt, api_fmt, ext in FORMATS:
        p = os.path.join(d.import_dir, f"disk.{ext}")
        subprocess.run(["qemu-img", "convert", "-O", qfmt, disk, p], check=True, timeout=120)
        srcs[api_fmt] = p

    stored = {}
    for qfmt, api_fmt, ext in FORMATS:
        name = f"from-{ext}"
        img, task, progress, _ = d.import_image(name, srcs[api_fmt], fmt="auto")
        log(f"{name}: source_format {img['source_format']}, progress {progress}, {img['size_bytes']} bytes")
        t.check(task["progress"] == 100 and task["kind"] == "image_import", f"{name}: task {task}")
        t.check(img["source_format"] == api_fmt, f"{name}: source_format {img['source_format']!r}, "
                                                 f"expected {api_fmt!r}")
        t.check(img["format"] == "qcow2" and img["state"] == "ready", f"{name}: {img}")
        t.check(img["source_path"] == srcs[api_fmt], f"{name}: source_path {img['source_path']!r}")
        p = stored_path(d, img["sha256"])
        if not t.check(p, f"{name}: no stored qcow2 has the reported sha256 {img['sha256']}"):
            continue
        stored[name] = p
        info = vt.qemu_img_info(p)
        t.check(img["virtual_size_bytes"] == info["virtual-size"],
                f"{name}: virtual_size_bytes {img['virtual_size_bytes']} != stored {info['virtual-size']}")
        # same guest-visible bytes as the source (vpc may round the size up: compare the common part)
        cmp = subprocess.run(["qemu-img", "compare", "-U", disk, p], capture_output=True, text=True, timeout=120)
        t.check(cmp.returncode == 0, f"{name}: stored image differs from the source: {cmp.stdout} {cmp.stderr}")

    # explicit format matching the file works too
    img, task, _, _ = d.import_image("explicit-raw", srcs["raw"], fmt="raw")
    t.check(img["source_format"] == "raw" and img["state"] == "ready", f"explicit raw: {img}")

    # the wrong explicit format fails as a task and leaves nothing
    before = (sorted(d.files()), [i["name"] for i in d.images()])
    r = d.api("POST", "images", {"name": "wrong-fmt", "path": srcs["raw"], "format": "vmdk"})
    if r.status == 202:
        task, _ = d.wait_task(r.json["task"]["id"], 60)
        t.check(task["state"] == "failed" and isinstance(task.get("error"), str) and len(task["error"]) > 10,
                f"raw file imported as vmdk: task {task}")
        log(f"wrong format: task error {task.get('error')!r}")
    else:
        t.expect_error(r, 400, "invalid_argument", what="raw file imported as vmdk")
    t.check(d.api("GET", "images/wrong-fmt").status == 404, "a failed import left an image row")
    after = (sorted(d.files()), [i["name"] for i in d.images()])
    t.check(before == after, f"a failed import changed files or images: "
                             f"{sorted(set(after[0]) ^ set(before[0]))} {after[1]}")

    # a VM from the raw-converted image boots
    d.api("POST", "vms", {"name": "raw-boot", "memory_mib": 256, "disks": [{"image": "from-raw"}]}, expect=201)
    d.api("POST", "vms/raw-boot/start", expect=200)
    d.console_wait("raw-boot", b"VESSEL-DISK-BOOT-OK", timeout=120)
    log("VM from the raw import booted")
    d.api("DELETE", "vms/raw-boot?force=true", expect=200)

    for name, p in stored.items():
        d.api("DELETE", f"images/{name}", expect=200)
        t.check(not os.path.exists(p), f"{name}: {p} left after DELETE")
    d.api("DELETE", "images/explicit-raw", expect=200)
    t.check(d.images() == [], f"images left: {[i['name'] for i in d.images()]}")
    for p in srcs.values():
        t.check(os.path.exists(p), f"deleting an image removed the user's source file {p}")
    t.check(not d.qemu_pids(), f"QEMU left: {d.qemu_pids()}")


if __name__ == "__main__":
    vt.Test("images", limit=300).run(main)
