# frozen_string_literal: true

# rake heapcapture:signal[PAYLOAD,PROCESS_TYPE,DYNOS,WAIT,TRACE_FOR]
#   (or PAYLOAD=, PROCESS_TYPE=, DYNOS=, WAIT=, TRACE_FOR=)
# Loaded by HeapCapture::Railtie in a Rails app; in any other Rakefile: require "heapcapture/tasks"
# It runs `heapcapture signal` with those arguments: the same lines, errors and exit status.
namespace :heapcapture do
  desc "Tell the selected dynos to capture a heap dump; with WAIT (seconds) print the results"
  task :signal, %i[payload process_type dynos wait trace_for] do |_task, args|
    # In a Rails app, load it first so its configuration (HeapCapture.configure) applies.
    Rake::Task[:environment].invoke if Rake::Task.task_defined?(:environment)
    require "heapcapture/cli"

    pick = ->(name, env) { args[name].to_s.empty? ? ENV[env] : args[name] }
    argv = ["signal", pick.call(:payload, "PAYLOAD") || "go"]
    { process_type: ["--process-type", "PROCESS_TYPE"], dynos: ["--dynos", "DYNOS"], wait: ["--wait", "WAIT"],
      trace_for: ["--trace-for", "TRACE_FOR"] }
      .each do |name, (option, env)|
        value = pick.call(name, env)
        argv.push(option, value) if value
      end
    status = HeapCapture::CLI.start(argv)
    exit status unless status == HeapCapture::CLI::EXIT_OK
  end
end
