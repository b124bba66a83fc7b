# frozen_string_literal: true

# Finds the five C libraries heapcapture links, through pkg-config first and a plain library check
# second, and stops with the package to install when one is missing.
require "mkmf"

# [pkg-config name, library, a header it must provide, Debian package, Homebrew formula]
LIBRARIES = [
  ["libpq",     "pq",     "libpq-fe.h",       "libpq-dev",            "libpq"],
  ["libcurl",   "curl",   "curl/curl.h",      "libcurl4-openssl-dev", "curl"],
  ["libcrypto", "crypto", "openssl/evp.h",    "libssl-dev",           "openssl@3"],
  ["zlib",      "z",      "zlib.h",           "zlib1g-dev",           "zlib"],
  ["expat",     "expat",  "expat.h",          "libexpat1-dev",        "expat"]
].freeze

def missing_library(name, lib, debian, brew)
  abort <<~MSG

    heapcapture: cannot build: the #{name} development files were not found.
      Debian/Ubuntu: sudo apt-get install #{debian}
      macOS (Homebrew): brew install #{brew}   (then: export PKG_CONFIG_PATH="$(brew --prefix #{brew})/lib/pkgconfig")
      Heroku: add #{debian} to the Aptfile of heroku-community/apt, listed before the Ruby buildpack
    then install the gem again (bundle install, or gem install heapcapture). Installed somewhere
    else: gem install heapcapture -- --with-#{lib}-dir=/that/prefix (or set PKG_CONFIG_PATH).

  MSG
end

LIBRARIES.each do |pc, lib, header, debian, brew|
  dir_config(lib) # --with-<lib>-dir, --with-<lib>-include, --with-<lib>-lib
  found = pkg_config(pc)
  # libpq's pkg-config file does not always name the server include dir; pg_config knows.
  $INCFLAGS << " -I#{`pg_config --includedir`.strip}" if pc == "libpq" && !have_header(header) && find_executable("pg_config")
  found ||= have_library(lib)
  missing_library(pc, lib, debian, brew) unless found && have_header(header)
end

# ISA-L's igzip, when installed, does the gzip stream with a fifth of zlib's CPU (dump_gzip.h).
# It is optional: without it (or with `gem install heapcapture -- --disable-isal`) zlib does it.
# gem install shows this output only with --verbose (else it is in gem_make.out); at run time
# `heapcapture --version` and HeapCapture::Dump::GZIP_ENGINE say which the build took.
if !enable_config("isal", true)
  message "heapcapture: ISA-L disabled (--disable-isal); gzip will use zlib\n"
elsif (pkg_config("libisal") || have_library("isal")) && have_header("isa-l/igzip_lib.h") &&
      have_func("isal_deflate", "isa-l/igzip_lib.h")
  $defs << "-DHC_HAVE_ISAL"
  message "heapcapture: gzip by ISA-L (igzip)\n"
else
  message "heapcapture: ISA-L not found (Debian: libisal-dev, Homebrew: isa-l); gzip will use zlib\n"
end

# libsodium's keyed BLAKE2b redacts strings (dump_redact.h) and its sealed box seals replies
# (signal_reply_seal.h): optional, like ISA-L; without it (or with --disable-sodium) the setting
# redact: :strings and HeapCapture::Seal say what to install.
if !enable_config("sodium", true)
  message "heapcapture: libsodium disabled (--disable-sodium); redact: :strings and sealed replies will not be available\n"
elsif (pkg_config("libsodium") || have_library("sodium")) && have_header("sodium.h") &&
      have_func("crypto_generichash", "sodium.h")
  $defs << "-DHC_HAVE_SODIUM"
else
  message "heapcapture: libsodium not found (Debian: libsodium-dev, Homebrew: libsodium); " \
          "redact: :strings and sealed replies will not be available\n"
end

have_func("prctl", "sys/prctl.h") # PR_SET_PDEATHSIG for the dump child (Linux)
# The sampled tracer's postponed job: Ruby 3.3's API, safe from anywhere; 3.1 has only the older
# rb_postponed_job_register_one, which 3.3 deprecates.
have_func("rb_postponed_job_preregister", "ruby/debug.h")
# The heap walk that prepares strings' coderanges before a fork (rb_dump_prepare.c): the GC's own
# walk, exported for ext/objspace, declared in no public header; without it, no preparing.
have_func("rb_objspace_each_objects")
# The dump IO's large write buffer (rb_dump_shared.c; inline mode and the dump child): the IO
# struct's write buffer, while Ruby has one.
have_type("rb_io_t", "ruby/io.h") && have_struct_member("rb_io_t", "wbuf", "ruby/io.h")

$CFLAGS << " -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fvisibility=hidden"
$CFLAGS << " -Werror" if ENV["HEAPCAPTURE_WERROR"]
$LDFLAGS << " -lpthread"

create_makefile("heapcapture/heapcapture")
