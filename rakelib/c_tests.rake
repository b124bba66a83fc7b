# frozen_string_literal: true

# The pure C modules (every ext/heapcapture/*.c that is not a Ruby binding) are tested on their
# own, without Ruby, built with AddressSanitizer and UBSan. Each test/c/test_*.c is one program.
require "rbconfig"

C_TEST_DIR = "test/c"
C_BUILD_DIR = "test/c/build"
C_EXT_DIR = "ext/heapcapture"
# The libraries a C file needs, known by the headers it includes (pkg-config names).
C_LIB_OF_HEADER = { "libpq-fe.h" => "libpq", "curl/" => "libcurl", "openssl/" => "libcrypto", "zlib.h" => "zlib",
                    "expat.h" => "expat", "isa-l/" => "libisal", "sodium.h" => "libsodium" }.freeze
# ISA-L is optional, as in extconf.rb: when installed, dump_gzip.c is built with it (and its
# test checks both engines); without it, zlib alone.
C_ISAL = system("pkg-config --exists libisal") &&
         File.exist?(File.join(`pkg-config --variable=includedir libisal`.strip, "isa-l/igzip_lib.h"))

# Read as bytes: in any locale (CI has none), a UTF-8 comment must not raise.
# libsodium is optional too (redaction): with it, dump_redact.c is built with it and tested.
C_SODIUM = system("pkg-config --exists libsodium")

def c_includes(file) = File.binread(file).scan(/^#\s*include\s+[<"]([^>"]+)[>"]/n).flatten

# What a C program made of src needs: [the pure C modules it calls, the libraries], followed
# from its #includes (a header of ours brings its .c, whose own includes are followed in turn).
# The code is the one list: each test links what it uses, so a module's real dependencies show.
def c_needs(src, isal: C_ISAL)
  modules = []
  libs = []
  todo = [src]
  seen = {}
  until todo.empty?
    file = todo.shift
    next if seen[file]

    seen[file] = true
    c_includes(file).each do |inc|
      header = File.join(C_EXT_DIR, inc)
      if File.exist?(header)
        todo << header
        impl = header.sub(/\.h\z/, ".c")
        if impl != header && File.exist?(impl) && !modules.include?(impl)
          modules << impl
          todo << impl
        end
      end
      C_LIB_OF_HEADER.each { |prefix, lib| libs << lib if inc.start_with?(prefix) }
    end
  end
  libs.delete("libisal") unless isal
  libs.delete("libsodium") unless C_SODIUM
  [modules.sort, libs.uniq]
end

def c_pkg_flags(kind, libs)
  flags = libs.map { |lib| `pkg-config --#{kind} #{lib} 2>/dev/null`.strip }
  flags << "-DHC_HAVE_ISAL" if kind == "cflags" && libs.include?("libisal")
  flags << "-DHC_HAVE_SODIUM" if kind == "cflags" && libs.include?("libsodium")
  flags << "-I#{`pg_config --includedir`.strip}" if kind == "cflags" && libs.include?("libpq") &&
                                                    system("pg_config >/dev/null 2>&1")
  flags << "-lpthread" if kind == "libs"
  flags.reject(&:empty?).join(" ")
end

namespace :test do
  desc "Build the pure C modules' unit tests with ASan and UBSan and run them"
  task :c do
    mkdir_p C_BUILD_DIR
    cc = ENV.fetch("CC", "gcc")
    common = "-std=gnu11 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer " \
             "-fsanitize=address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} -I#{C_TEST_DIR} "
    tests = FileList["#{C_TEST_DIR}/test_*.c"]
    abort "test:c: no C tests found in #{C_TEST_DIR}" if tests.empty?
    # [source, program, with ISA-L]: every test as the gem is built here; with ISA-L installed,
    # the gzip test once more without it, as the gem builds where there is none (Heroku).
    builds = tests.map { |src| [src, File.basename(src, ".c"), C_ISAL] }
    builds << ["#{C_TEST_DIR}/test_dump_gzip.c", "test_dump_gzip_zlib_only", false] if C_ISAL
    env = { "ASAN_OPTIONS" => "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS" => "print_stacktrace=1" }
    passed = failed = 0
    builds.each do |src, name, isal|
      bin = File.join(C_BUILD_DIR, name)
      modules, libs = c_needs(src, isal: isal)
      sh "#{cc} #{common}#{c_pkg_flags('cflags', libs)} -o #{bin} #{src} #{modules.join(' ')} #{c_pkg_flags('libs', libs)}"
      if system(env, bin, chdir: ".")
        passed += 1
      else
        failed += 1
        warn "test:c: #{bin} failed (exit #{$?.exitstatus.inspect})"
      end
    end
    puts "C test programs: #{passed} passed, #{failed} failed"
    abort "test:c: #{failed} C test program(s) failed" if failed.positive?
  end
end
