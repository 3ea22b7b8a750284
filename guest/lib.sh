# guest/lib.sh: shell functions shared by guest/build.sh and
# tests/testhost/build.sh — fetching the Debian cloud kernel into a cache,
# resolving kernel module load order from modules.dep, and laying out a
# busybox tree. Sourced, not executed; callers run with `set -euo pipefail`.
# shellcheck shell=bash

# Print a message on stderr, prefixed by the calling script's name.
guest_log() {
	echo "${0##*/}: $*" >&2
}

# guest_die MESSAGE: report what went wrong and stop.
guest_die() {
	guest_log "$*"
	exit 1
}

# guest_kernel_fetch CACHE KROOT: make sure KROOT holds the extracted Debian
# cloud kernel package (boot/vmlinuz-VER, lib/modules/VER with a modules.dep)
# and print VER. The version is the one the linux-image-cloud-amd64
# metapackage depends on; the .deb is kept in CACHE so later builds need no
# network. KROOT/.version records what is extracted so a re-run only reads it.
guest_kernel_fetch() {
	local cache=$1 kroot=$2 pkg ver deb
	if [ -s "$kroot/.version" ] && [ -z "${VESSEL_REFRESH:-}" ]; then
		ver=$(cat "$kroot/.version")
		if [ -f "$kroot/boot/vmlinuz-$ver" ] && [ -f "$kroot/lib/modules/$ver/modules.dep" ]; then
			echo "$ver"
			return 0
		fi
	fi
	mkdir -p "$cache"
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || guest_die "cannot find which kernel linux-image-cloud-amd64 depends on; run 'apt-get update' and retry"
	ver=${pkg#linux-image-}
	deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		guest_log "downloading $pkg into $cache"
		# apt-get download writes into the current directory; as root it warns
		# that the _apt user cannot write there, which is harmless.
		(cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
			guest_die "apt-get download $pkg failed; check that the Debian mirror is reachable"
		deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
		[ -n "$deb" ] || guest_die "apt-get download $pkg left no .deb in $cache"
	fi
	rm -rf "$kroot"
	mkdir -p "$kroot"
	dpkg-deb -x "$deb" "$kroot"
	[ -f "$kroot/boot/vmlinuz-$ver" ] || guest_die "$deb holds no boot/vmlinuz-$ver"
	# The package ships no modules.dep (the postinst runs depmod); make one
	# for the extracted tree so load order can be resolved offline.
	depmod -b "$kroot" "$ver"
	echo "$ver" >"$kroot/.version"
	echo "$ver"
}

# guest_modules_order MODDIR NAME...: print the .ko paths (relative to MODDIR)
# needed to load each named module, dependencies first, each once. Modules
# built into the kernel (modules.builtin) are left out; a name that is
# neither a module nor built in is an error.
guest_modules_order() {
	local moddir=$1
	shift
	awk -v builtin="$moddir/modules.builtin" -v wanted="$*" '
	function norm(s) { gsub("-", "_", s); return s }
	function base(p,   n) { n = p; sub(".*/", "", n); sub("\\.ko(\\.[a-z]+)?$", "", n); return norm(n) }
	function visit(p,   i, n, d) {
		if (p in done) return
		done[p] = 1
		n = split(deps[p], d, " ")
		# modules.dep lists the whole closure; visiting each dependency
		# first yields an order insmod accepts.
		for (i = 1; i <= n; i++) visit(d[i])
		print p
	}
	BEGIN {
		while ((getline line < builtin) > 0) isbuiltin[base(line)] = 1
	}
	{
		p = $1; sub(":$", "", p)
		deps[p] = ""
		for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i
		path[base(p)] = p
	}
	END {
		n = split(wanted, w, " ")
		for (i = 1; i <= n; i++) {
			m = norm(w[i])
			if (m in path) visit(path[m])
			else if (!(m in isbuiltin)) { print "unknown module " w[i] > "/dev/stderr"; err = 1 }
		}
		exit err
	}' "$moddir/modules.dep"
}

# guest_modules_install MODDIR DEST NAME...: copy the modules needed for
# NAME... into DEST/lib/modules/ (flat) and write their load order to
# DEST/etc/vessel-modules, one file name a line.
guest_modules_install() {
	local moddir=$1 dest=$2 order p
	shift 2
	order=$(guest_modules_order "$moddir" "$@") || guest_die "cannot resolve kernel modules: $*"
	mkdir -p "$dest/lib/modules" "$dest/etc"
	: >"$dest/etc/vessel-modules"
	for p in $order; do
		cp "$moddir/$p" "$dest/lib/modules/"
		echo "${p##*/}" >>"$dest/etc/vessel-modules"
	done
}

# guest_busybox_install DEST: static busybox with one symlink per applet.
guest_busybox_install() {
	local dest=$1 bb applet
	bb=$(command -v busybox || true)
	[ -n "$bb" ] || guest_die "busybox not found; install the busybox-static package (scripts/install-deps)"
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
		guest_die "$bb is not statically linked; install busybox-static (scripts/install-deps)"
	mkdir -p "$dest/bin" "$dest/sbin" "$dest/usr/bin" "$dest/usr/sbin" "$dest/proc" "$dest/sys" \
		"$dest/dev" "$dest/tmp" "$dest/root" "$dest/mnt" "$dest/run" "$dest/etc"
	cp "$bb" "$dest/bin/busybox"
	for applet in $("$bb" --list-full); do
		[ -e "$dest/$applet" ] || ln -s /bin/busybox "$dest/$applet"
	done
}

# guest_cpio SRCDIR OUT [gzip|none]: pack SRCDIR as a newc cpio archive with
# reproducible metadata (same tree, same bytes), compressed with gzip unless
# told otherwise.
guest_cpio() {
	local src=$1 out=$2 comp=${3:-gzip}
	(
		cd "$src" || exit 1
		find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible --owner=0:0
	) >"$out.tmp.cpio"
	if [ "$comp" = gzip ]; then
		gzip -n -6 <"$out.tmp.cpio" >"$out.tmp"
		rm -f "$out.tmp.cpio"
	else
		mv "$out.tmp.cpio" "$out.tmp"
	fi
	mv "$out.tmp" "$out"
}
