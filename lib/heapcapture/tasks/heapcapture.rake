# frozen_string_literal: true

# rake heapcapture:signal[PAYLOAD,PROCESS_TYPE,DYNOS,WAIT]  (or PAYLOAD=, PROCESS_TYPE=, DYNOS=, WAIT=)
# Loaded by HeapCapture::Railtie in a Rails app; in any other Rakefile: require "heapcapture/tasks"
namespace :heapcapture do
  desc "Tell the selected dynos to capture a heap dump; with WAIT (seconds) print the results"
  task :signal, %i[payload process_type dynos wait] do |_task, args|
    # In a Rails app, load it first so its configuration (HeapCapture.configure) applies.
    Rake::Task[:environment].invoke if Rake::Task.task_defined?(:environment)
    require "heapcapture"

    pick = ->(name, env) { args[name].to_s.empty? ? ENV[env] : args[name] }
    payload = pick.call(:payload, "PAYLOAD") || "go"
    dynos = pick.call(:dynos, "DYNOS")
    wait = pick.call(:wait, "WAIT")
    options = { process_type: pick.call(:process_type, "PROCESS_TYPE") || "web",
                dynos: dynos ? Integer(dynos, exception: false) || dynos : 1,
                wait: wait && (Float(wait, exception: false) || wait) }
    result = HeapCapture.signal(payload, **options)
    unless options[:wait]
      result.each { |channel| puts "signalled #{channel}" }
      next
    end
    result.each { |r| puts HeapCapture::Report.line(r) }
    abort "heapcapture: no reply within #{options[:wait]} s" if result.empty?
    abort "heapcapture: not every capture succeeded" unless HeapCapture::Report.all_ok?(result)
  end
end
